// Many lightweight workers in one process (bench/thousand.mjs): each speaks the real protocol over
// its own WebSocket (hello with a platform, heartbeats with what it holds, `started` and `finished`
// for whatever it is assigned, at once), runs nothing. Argv: URL TOKEN FIRST COUNT PLATFORM.
// Tells the parent over IPC when all are welcomed, and on request what each was assigned.
import WebSocket from '../packages/server/node_modules/ws/index.js';

const [url, token, first, count, platform] = process.argv.slice(2);
const assigned = []; // runId per assign received, across all workers here
let welcomed = 0;

function worker(name) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`, { perMessageDeflate: false, handshakeTimeout: 30_000 });
  // nor does it wait for ever on a handshake or a welcome that never comes
  const giveUp = setTimeout(() => ws.terminate(), 60_000);
  let assignsSeen = 0;
  let heartbeat;
  let isWelcomed = false;
  ws.on('error', (err) => process.send?.({ type: 'error', name, error: err.message }));
  // a connection lost before its welcome is tried again, as a real worker would: waiting for its
  // welcome for ever left the whole bench hanging (seen once at load 9: 999 of 1,000 welcomed, no error)
  ws.on('close', (code) => {
    if (isWelcomed) return;
    process.send?.({ type: 'error', name, error: `closed (${code}) before its welcome: connecting again` });
    setTimeout(() => worker(name), 100);
  });
  ws.on('open', () =>
    ws.send(
      JSON.stringify({
        type: 'hello',
        versions: [1],
        role: 'worker',
        token,
        worker: { name, platform, labels: [], capacity: 1, executor: 'bench', running: [] },
      }),
    ),
  );
  ws.on('message', (data) => {
    const m = JSON.parse(data);
    if (m.type === 'welcome') {
      isWelcomed = true;
      clearTimeout(giveUp);
      if (++welcomed === Number(count)) process.send?.({ type: 'welcomed' });
      // what it holds is always nothing: each run ends the moment it is given
      const beat = () => ws.send(JSON.stringify({ type: 'heartbeat', running: [], assignsSeen }));
      setTimeout(() => ((heartbeat = setInterval(beat, m.heartbeatMs)), beat()), Math.random() * m.heartbeatMs);
    } else if (m.type === 'assign') {
      assignsSeen++;
      const { runId, attempt } = m.run;
      assigned.push(runId);
      ws.send(JSON.stringify({ type: 'started', runId, attempt, startedAt: Date.now() }));
      const result = { kind: 'exited', code: 0 };
      ws.send(JSON.stringify({ type: 'finished', runId, attempt, lastSeq: 0, result, finishedAt: Date.now() }));
    } else if (m.type === 'error') {
      process.send?.({ type: 'error', name, error: m.error.message });
    }
  });
  ws.on('close', () => clearInterval(heartbeat));
}

for (let i = 0; i < Number(count); i++) worker(`bw${Number(first) + i}`);
process.on('message', (m) => {
  if (m === 'assigned') process.send({ type: 'assigned', runIds: assigned });
});
process.on('disconnect', () => process.exit(0));
