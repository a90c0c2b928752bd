import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Assignment, type Finished, type Reattach, createLogger } from '@builder/protocol';

type Started = Extract<WorkerToServer, { type: 'started' }>;
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { HostExecutor } from './executors/host.ts';
import { compileOptions, DEFAULTS, type WorkerOptionsInput } from './options.ts';
import {
  eventually,
  type FakeConnection,
  FakeServer,
  type FakeServerOptions,
  isAlive,
  type WorkerToServer,
} from './test-support/fake-server.ts';
import { Worker } from './worker.ts';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch (err) {
      console.error('cleanup failed', err);
    }
  }
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'builder-worker-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function startServer(options?: FakeServerOptions): Promise<FakeServer> {
  const server = await FakeServer.start(options);
  cleanups.push(() => server.close());
  return server;
}

async function startWorker(server: FakeServer, over: WorkerOptionsInput = {}, env: NodeJS.ProcessEnv = process.env) {
  const workDir = over.workDir ?? join(await tempDir(), 'work');
  const options = compileOptions({
    remote: server.url,
    token: 'W',
    platform: 'debian-12',
    name: 'w1',
    capacity: 2,
    reconnectMaxMs: 200,
    shutdownAckTimeoutMs: 300,
    ...over,
    workDir,
  });
  const lines: string[] = [];
  const log = createLogger({ json: true, write: (line) => lines.push(line) });
  onTestFailed(() => console.log(`worker log:\n${lines.join('')}`));
  const executor = new HostExecutor({ workDir: options.workDir, platform: options.platform, log, env });
  const worker = new Worker({ options, executor, log });
  cleanups.push(() => worker.stop('test over'));
  await worker.start();
  return { worker, workDir, lines };
}

function assignment(over: Partial<Assignment> = {}): Assignment {
  return {
    runId: randomUUID(),
    attempt: 1,
    job: 'test-job',
    number: 1,
    platform: 'debian-12',
    script: 'true',
    params: {},
    timeoutSec: 30,
    killGraceSec: 1,
    attemptSecret: 'a'.repeat(64),
    secrets: {},
    missingSecrets: [],
    ...over,
  };
}

function welcome(reattach: Reattach[] = [], heartbeatMs = 1000) {
  return { type: 'welcome', version: 1, serverVersion: 'fake', role: 'worker', heartbeatMs, leaseMs: 3000, reattach };
}

const finishedOf =
  (runId: string) =>
  (m: WorkerToServer): m is Finished =>
    m.type === 'finished' && m.runId === runId;

const forRun = (conn: FakeConnection, runId: string) => conn.received.filter((m) => 'runId' in m && m.runId === runId);

function expectContiguous(seqs: number[], from = 1): void {
  expect(seqs).toEqual(seqs.map((_, i) => from + i));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A spare run dir of the host executor's, for the next run (this process is the worker's). */
const SPARE = new RegExp(`^\\.next-${process.pid}-\\d+$`);
/** Nothing in the work dir but one spare run dir. */
const onlySpare = (workDir: string) => {
  const entries = readdirSync(workDir);
  return entries.length === 1 && SPARE.test(entries[0]!);
};

/** A dir outside every run's with a file `precious` ("keep") that no job may reach through a link. */
async function outsideDir(): Promise<string> {
  const outside = await tempDir();
  // as a script's mode: only its link count tells it from one
  writeFileSync(join(outside, 'precious'), 'keep', { mode: 0o755 });
  return outside;
}
const untouched = (outside: string) => expect(readFileSync(join(outside, 'precious'), 'utf8')).toBe('keep');

/** Assign `script`, expect it to exit 0, acknowledge its end; its stdout. */
async function runToEnd(server: FakeServer, conn: FakeConnection, script: string): Promise<string> {
  const job = assignment({ script });
  conn.send({ type: 'assign', run: job });
  expect((await conn.waitFor(finishedOf(job.runId), 'finished')).result).toEqual({ kind: 'exited', code: 0 });
  conn.send({ type: 'finished-ack', runId: job.runId, attempt: 1 });
  return server.text(job.runId, 'out');
}

describe('worker against a fake server', () => {
  it('runs a job: hello, started, contiguous exact output, finished exited 3, then forgets it', async () => {
    const server = await startServer();
    const { worker, workDir, lines } = await startWorker(server, {}, { ...process.env, BUILDER_TOKEN: 'secret' });
    const conn = await server.connection(0);
    expect(conn.hello).toMatchObject({
      role: 'worker',
      token: 'W',
      versions: [1],
      worker: { name: 'w1', platform: 'debian-12', capacity: 2, executor: 'host', labels: [], running: [] },
    });

    const job = assignment({
      job: 'hello',
      number: 7,
      params: { GREETING: 'hi there' },
      script: [
        "printf 'hello\\n'",
        "printf '\\342\\202'", // the first two bytes of €…
        'sleep 0.1',
        "printf '\\254\\n'", // …and the last one, in another write
        'echo "to stderr" >&2',
        'echo "job=$BUILDER_JOB run=$BUILDER_RUN id=$BUILDER_RUN_ID attempt=$BUILDER_ATTEMPT platform=$BUILDER_PLATFORM"',
        'echo "out=$BUILDER_OUTPUT cwd=$(pwd) greeting=$GREETING token=${BUILDER_TOKEN:-none}"',
        'test -d "$BUILDER_OUTPUT" && echo output-dir-ok',
        'exit 3',
      ].join('\n'),
    });
    const assignedAt = Date.now();
    conn.send({ type: 'assign', run: job });
    const finished = await conn.waitFor(finishedOf(job.runId), 'finished');

    expect(finished.result).toEqual({ kind: 'exited', code: 3 });
    const messages = forRun(conn, job.runId);
    const started = messages[0] as Started;
    expect(started.type).toBe('started');
    expect(started.startedAt).toBeGreaterThanOrEqual(assignedAt - 50);
    expect(started.startedAt).toBeLessThan(Date.now() + 50);
    expect(messages.at(-1)).toBe(finished);
    const outputs = conn.outputs(job.runId);
    expectContiguous(outputs.map((o) => o.seq));
    expect(finished.lastSeq).toBe(outputs.length);
    expect(outputs.some((o) => o.data.toString('utf8').includes('\uFFFD'))).toBe(false);

    const dir = join(workDir, `${job.runId}-1`);
    expect(server.text(job.runId, 'out')).toBe(
      'hello\n€\n' +
        `job=hello run=7 id=${job.runId} attempt=1 platform=debian-12\n` +
        `out=${dir}/output cwd=${dir} greeting=hi there token=none\n` +
        'output-dir-ok\n',
    );
    expect(server.text(job.runId, 'err')).toBe('to stderr\n');
    expect(conn.errors).toEqual([]);
    await eventually(() => worker.snapshot().length === 0, 'the run to be forgotten after finished-ack');
    // the run's dir is gone, or kept for the next run: what is left is one spare
    expect(readdirSync(workDir)).toEqual([expect.stringMatching(SPARE)]);

    // the same log line shape as the server's: event names, and the run under `run`
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.find((e) => e.event === 'run.started')).toMatchObject({
      level: 'info',
      run: job.runId,
      job: 'hello',
      attempt: 1,
    });
    expect(events.find((e) => e.event === 'run.finished')).toMatchObject({
      run: job.runId,
      result: { kind: 'exited', code: 3 },
    });
    expect(events.every((e) => typeof e.time === 'string' && !('runId' in e) && !('msg' in e))).toBe(true);
  });

  it('carries output that is not UTF-8 byte-exact, on stdout and stderr', async () => {
    const server = await startServer();
    await startWorker(server);
    const conn = await server.connection(0);
    const job = assignment({ script: "printf '\\377\\376ok\\n'\nprintf 'a\\342\\202' >&2\n" });
    conn.send({ type: 'assign', run: job });
    const finished = await conn.waitFor(finishedOf(job.runId), 'finished');
    expect(finished.result).toEqual({ kind: 'exited', code: 0 });
    expect([...server.bytes(job.runId, 'out')]).toEqual([0xff, 0xfe, 0x6f, 0x6b, 0x0a]);
    // a sequence left incomplete when the stream ends is sent as it is, not held back or replaced
    expect([...server.bytes(job.runId, 'err')]).toEqual([0x61, 0xe2, 0x82]);
    expect(conn.errors).toEqual([]);
  });

  it('executes a script with a #! line directly', async () => {
    const server = await startServer();
    await startWorker(server);
    const conn = await server.connection(0);
    const job = assignment({ script: '#!/bin/sh\necho "via $0"\n' });
    conn.send({ type: 'assign', run: job });
    const finished = await conn.waitFor(finishedOf(job.runId), 'finished');
    expect(finished.result).toEqual({ kind: 'exited', code: 0 });
    expect(server.text(job.runId, 'out')).toMatch(/^via \/.*\/script\.sh\n$/);
  });

  it('reports a job killed by a signal as signalled, and an interpreter that cannot start as an error', async () => {
    const server = await startServer();
    await startWorker(server);
    const conn = await server.connection(0);
    const segv = assignment({ script: 'echo before\nkill -SEGV $$\n' });
    const noInterpreter = assignment({ script: '#!/nonexistent/interpreter\n' });
    conn.send({ type: 'assign', run: segv });
    conn.send({ type: 'assign', run: noInterpreter });
    expect((await conn.waitFor(finishedOf(segv.runId), 'finished')).result).toEqual({
      kind: 'signalled',
      signal: 'SIGSEGV',
    });
    const failed = await conn.waitFor(finishedOf(noInterpreter.runId), 'finished');
    expect(failed.result).toMatchObject({ kind: 'error', message: expect.stringContaining('ENOENT') });
  });

  it('removes the run directory whatever the job left in it, never what a symlink there points to', async () => {
    const server = await startServer();
    const outside = await outsideDir();
    const { workDir } = await startWorker(server);
    const conn = await server.connection(0);
    await runToEnd(server, conn, 'true');
    await runToEnd(server, conn, 'mkdir -p a/b && echo x > a/b/c && echo y > left-behind');
    // a symlink out of the run dir, and the script swapped for a dir
    await runToEnd(server, conn, `ln -s ${outside} link && rm script.sh && mkdir script.sh`);
    await eventually(() => onlySpare(workDir), 'every run directory to be removed');
    untouched(outside);
  });

  it('gives each run a dir of its own: the one before kept only as it was made, its script cut to the new one', async () => {
    const server = await startServer();
    const outside = await outsideDir();
    const { workDir } = await startWorker(server);
    const conn = await server.connection(0);
    const run = (script: string) => runToEnd(server, conn, script);
    const look = 'ls -A; ls -A output; stat -c %a . output script.sh; cat script.sh';
    const made = await run('stat -c %a . output script.sh');
    const clean = (script: string) => `output\nscript.sh\n${made}${script}`;
    // a trivial job's dir is kept for the next run (the time the job gave it shows that), holding
    // only the new script
    await run(`touch -d @1000000000 .; echo ${'a much longer script than the next one '.repeat(20)}`);
    expect(await run(`stat -c %Y .; ${look}`)).toBe(`1000000000\n${clean(`stat -c %Y .; ${look}`)}`);
    // a job (as the worker's user, like everything on the host executor) leaves a file, swaps its
    // script for a symlink to a file outside, makes it a hard link to one, takes its mode away,
    // changes the dirs' modes: each time the next run gets a dir as made, nothing is written through
    for (const tamper of [
      'touch planted',
      `ln -s ${outside}/precious link && mv link script.sh`,
      `ln -f ${outside}/precious script.sh`,
      'chmod 0 script.sh',
      'chmod 0777 .',
      'chmod 0700 output',
    ]) {
      expect(await run(`${look}; ${tamper}`)).toBe(clean(`${look}; ${tamper}`));
    }
    expect(await run(look)).toBe(clean(look));
    // a script with its own interpreter runs as the file itself: still executable
    expect(await run('#!/bin/sh\necho interpreted')).toBe('interpreted\n');
    untouched(outside);
    expect(onlySpare(workDir)).toBe(true);
  });

  it.skipIf(process.getuid?.() !== 0)(
    'on a full work dir ends a run in error without running part of its script, and goes on once there is room (tmpfs: root)',
    async () => {
      const server = await startServer();
      const workDir = join(await tempDir(), 'work');
      mkdirSync(workDir);
      expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', workDir]).status).toBe(0);
      cleanups.push(() => spawnSync('umount', ['-l', workDir]));
      await startWorker(server, { workDir, capacity: 1 });
      const conn = await server.connection(0);
      // a run leaves its dir as made: kept for the next, its script.sh holding one page
      expect(await runToEnd(server, conn, `echo first # ${'x'.repeat(3000)}`)).toBe('first\n');
      const filler = join(workDir, 'filler');
      expect(() => writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024))).toThrow(/ENOSPC/);
      // a script longer than that page: the disk takes its first part only, which alone would run
      const job = assignment({ script: `echo part\n# ${'y'.repeat(5000)}\necho whole\n` });
      conn.send({ type: 'assign', run: job });
      const finished = await conn.waitFor(finishedOf(job.runId), 'finished');
      expect(finished.result).toEqual({
        kind: 'error',
        message: expect.stringMatching(/^cannot set up the run directory: ENOSPC/) as string,
      });
      expect(server.text(job.runId, 'out')).toBe('');
      conn.send({ type: 'finished-ack', runId: job.runId, attempt: 1 });
      // room again: the next run runs, and nothing of the failed one's dir is left
      rmSync(filler);
      expect(await runToEnd(server, conn, 'echo again')).toBe('again\n');
      await eventually(() => onlySpare(workDir), 'only a spare run dir to be left');
    },
  );

  it("closes the job's output when a process that left its group holds it open after the job ended", async () => {
    const server = await startServer();
    await startWorker(server);
    const conn = await server.connection(0);
    // a daemon of its own session keeps the job's stdout; the group signal at the end misses it
    const daemon = `sleep 30.${process.pid}${Date.now() % 100000}`; // a command line of its own, to end it by
    cleanups.push(() => spawnSync('pkill', ['-x', '-f', daemon]));
    const job = assignment({
      // the job ends only once the daemon is out of its group (setsid done)
      script: `setsid sh -c ': > left; exec ${daemon}' & while [ ! -e left ]; do sleep 0.01; done; echo started`,
    });
    conn.send({ type: 'assign', run: job });
    const finished = await conn.waitFor(finishedOf(job.runId), 'finished');
    expect(finished.result).toEqual({ kind: 'exited', code: 0 });
    expect(server.text(job.runId, 'out')).toBe('started\n');
    expect(server.text(job.runId, 'system')).toContain('its output is still held open by a process outside its group');
  });

  it('refuses an output dir the job swapped for a symlink: nothing it points to is sent', async () => {
    const server = await startServer();
    const outside = await outsideDir();
    await startWorker(server);
    const conn = await server.connection(0);
    const job = assignment({ script: `rm -rf output && ln -s ${outside} output` });
    conn.send({ type: 'assign', run: job });
    const finished = await conn.waitFor(finishedOf(job.runId), 'finished');
    expect(finished.result).toEqual({
      kind: 'error',
      message: 'artifacts refused: the output dir was replaced by a symbolic link',
    });
    expect(server.text(job.runId, 'system')).toContain('the output dir was replaced by a symbolic link');
    untouched(outside);
  });

  it('removes stale run directories at start and leaves other files alone', async () => {
    const server = await startServer();
    const workDir = join(await tempDir(), 'work');
    const stale = join(workDir, `${randomUUID()}-2`);
    mkdirSync(join(stale, 'output'), { recursive: true });
    // a crashed worker's spare run dirs (and one of an earlier version's)
    mkdirSync(join(workDir, '.next-99999999-3', 'output'), { recursive: true });
    mkdirSync(join(workDir, '.next-99999999', 'output'), { recursive: true });
    writeFileSync(join(workDir, 'keep-me'), '');
    await startWorker(server, { workDir });
    expect(readdirSync(workDir).sort()).toEqual([expect.stringMatching(SPARE), 'keep-me']);
  });

  it('answers resend with the held chunks from fromSeq, then the result again', async () => {
    const server = await startServer();
    server.autoAck = false;
    server.autoFinishAck = false;
    await startWorker(server);
    const conn = await server.connection(0);
    const job = assignment({ script: 'echo one\nsleep 0.1\necho two\nsleep 0.1\necho three\n' });
    conn.send({ type: 'assign', run: job });
    const finished = await conn.waitFor(finishedOf(job.runId), 'finished');
    expect(finished.lastSeq).toBe(3);
    const before = conn.received.length;
    conn.send({ type: 'resend', runId: job.runId, attempt: 1, fromSeq: 2 });
    await conn.waitFor((m) => conn.received.indexOf(m) >= before && m.type === 'finished', 'finished again');
    const again = conn.received.slice(before);
    expect(again.map((m) => (m.type === 'output' ? `${m.seq}:${m.data.toString('utf8')}` : m.type))).toEqual([
      '2:two\n',
      '3:three\n',
      'finished',
    ]);
  });

  it('on timeout kills the whole process tree, TERM then KILL, and reports timeout', async () => {
    const server = await startServer();
    await startWorker(server);
    const conn = await server.connection(0);
    const pidFile = join(await tempDir(), 'grandchild.pid');
    const job = assignment({
      timeoutSec: 0.5,
      killGraceSec: 0.3,
      params: { PIDFILE: pidFile },
      // Ignoring TERM (inherited by the background child) forces the KILL step.
      script: 'trap \'\' TERM\nsleep 1000 &\necho $! > "$PIDFILE"\necho started\nsleep 1000\nwait\n',
    });
    conn.send({ type: 'assign', run: job });
    const finished = await conn.waitFor(finishedOf(job.runId), 'finished');
    expect(finished.result).toEqual({ kind: 'timeout' });
    const system = server.text(job.runId, 'system');
    expect(system).toContain('[builder] timeout after 0.5s');
    expect(system).toContain('SIGKILL');
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    expect(grandchild).toBeGreaterThan(1);
    await eventually(() => !isAlive(grandchild), `grandchild ${grandchild} to be gone`, 3000);
  });

  it('cancel terminates the process group and reports cancelled with the reason', async () => {
    const server = await startServer();
    await startWorker(server);
    const conn = await server.connection(0);
    const pidFile = join(await tempDir(), 'grandchild.pid');
    const job = assignment({
      params: { PIDFILE: pidFile },
      script: 'sleep 1000 &\necho $! > "$PIDFILE"\necho ready\nwait\n',
    });
    conn.send({ type: 'assign', run: job });
    await conn.waitFor(
      (m) => m.type === 'output' && m.runId === job.runId && m.data.toString('utf8').includes('ready'),
      'ready',
    );
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    conn.send({ type: 'cancel', runId: job.runId, attempt: 1, reason: 'by alice' });
    const finished = await conn.waitFor(finishedOf(job.runId), 'finished');
    expect(finished.result).toEqual({ kind: 'cancelled', reason: 'by alice' });
    expect(server.text(job.runId, 'system')).toContain('[builder] cancelled (by alice)');
    await eventually(() => !isAlive(grandchild), `grandchild ${grandchild} to be gone`, 3000);
  });

  it('pauses a job whose unacked output fills the window, and finishes it once acks flow', async () => {
    const server = await startServer();
    server.autoAck = false;
    server.autoFinishAck = false;
    const { worker } = await startWorker(server);
    const conn = await server.connection(0);
    const total = 50_000_000;
    const job = assignment({ script: `head -c ${total} /dev/zero | tr '\\0' x` });
    conn.send({ type: 'assign', run: job });

    const received = () => server.log(job.runId).accepted.reduce((n, o) => n + o.data.length, 0);
    let last = -1;
    let stableSince = Date.now();
    await eventually(
      () => {
        const now = received();
        if (now !== last) [last, stableSince] = [now, Date.now()];
        return now > 0 && Date.now() - stableSince > 500;
      },
      'output to stall without acks',
      20_000,
    );
    const window = DEFAULTS.windowBytes;
    expect(received()).toBeLessThanOrEqual(window);
    expect(received()).toBeGreaterThan(window - 256 * 1024);
    expect(conn.received.some(finishedOf(job.runId))).toBe(false);
    const [snapshot] = worker.snapshot();
    expect(snapshot?.phase).toBe('running');
    expect(snapshot?.maxBufferedBytes).toBeLessThanOrEqual(window);

    server.autoAck = true;
    server.ack(conn, job.runId);
    const finished = await conn.waitFor(finishedOf(job.runId), 'finished', 30_000);
    expect(finished.result).toEqual({ kind: 'exited', code: 0 });
    expect(received()).toBe(total);
    expect(server.log(job.runId).accepted.every((o) => /^x+$/.test(o.data.toString('latin1')))).toBe(true);
    expect(worker.snapshot()[0]?.maxBufferedBytes).toBeLessThanOrEqual(window);
    expect(conn.errors).toEqual([]);
  });

  it('re-attaches after the connection drops mid-run and resends exactly the unacked chunks', async () => {
    let job: Assignment | undefined;
    const server = await startServer({
      reply: (_hello, conn) => {
        if (conn.index === 0 || !job) return welcome();
        server.ackLimit = Number.POSITIVE_INFINITY;
        return welcome([server.reattach(job.runId, 'continue', server.truncateToAcked(job.runId))]);
      },
    });
    server.ackLimit = 2; // seq 3.. arrive but are not durable when the connection dies
    server.onMessage = (m, conn) => {
      if (conn.index === 0 && m.type === 'output' && m.seq === 4) conn.drop();
    };
    await startWorker(server);
    const conn0 = await server.connection(0);
    job = assignment({ script: 'i=1\nwhile [ $i -le 15 ]; do echo "line $i"; i=$((i+1)); sleep 0.04; done\n' });
    conn0.send({ type: 'assign', run: job });

    const conn1 = await server.connection(1);
    const held = conn1.hello?.worker?.running;
    expect(held).toHaveLength(1);
    expect(held?.[0]).toMatchObject({ runId: job.runId, attempt: 1, finished: false });
    expect(held?.[0]?.lastSeq).toBeGreaterThanOrEqual(4);

    const finished = await conn1.waitFor(finishedOf(job.runId), 'finished');
    expect(finished.result).toEqual({ kind: 'exited', code: 0 });
    const resent = conn1.outputs(job.runId).map((o) => o.seq);
    expect(resent[0]).toBe(3);
    expectContiguous(resent, 3);
    expect(finished.lastSeq).toBe(resent.at(-1));
    const log = server.log(job.runId);
    expect(log.duplicates).toEqual([]);
    expectContiguous(log.accepted.map((o) => o.seq));
    const lines = Array.from({ length: 15 }, (_, i) => `line ${i + 1}\n`).join('');
    expect(server.text(job.runId, 'out')).toBe(lines);
    expect([...conn0.errors, ...conn1.errors]).toEqual([]);
  });

  it('resends an unacknowledged finished after a reconnect', async () => {
    let job: Assignment | undefined;
    const server = await startServer({
      reply: (_hello, conn) => {
        if (conn.index === 0 || !job) return welcome();
        server.autoFinishAck = true;
        return welcome([server.reattach(job.runId, 'continue', server.log(job.runId).acked)]);
      },
    });
    server.autoFinishAck = false;
    const { worker } = await startWorker(server);
    const conn0 = await server.connection(0);
    job = assignment({ script: 'echo done' });
    conn0.send({ type: 'assign', run: job });
    await conn0.waitFor(finishedOf(job.runId), 'finished');
    await eventually(() => server.log(job!.runId).acked === 1, 'output acked');
    conn0.drop();
    const conn1 = await server.connection(1);
    expect(conn1.hello?.worker?.running).toEqual([{ runId: job.runId, attempt: 1, lastSeq: 1, finished: true }]);
    const again = await conn1.waitFor(finishedOf(job.runId), 'finished again');
    expect(again.result).toEqual({ kind: 'exited', code: 0 });
    expect(conn1.outputs(job.runId)).toEqual([]);
    await eventually(() => worker.snapshot().length === 0, 'run forgotten');
  });

  it('kills a held run that the server does not mention after a reconnect, and sends nothing more for it', async () => {
    const server = await startServer();
    const { worker } = await startWorker(server);
    const conn0 = await server.connection(0);
    const pidFile = join(await tempDir(), 'grandchild.pid');
    const job = assignment({
      params: { PIDFILE: pidFile },
      script: 'sleep 1000 &\necho $! > "$PIDFILE"\necho ready\nwait\n',
    });
    conn0.send({ type: 'assign', run: job });
    await conn0.waitFor((m) => m.type === 'output' && m.data.toString('utf8').includes('ready'), 'ready');
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    conn0.drop();
    const conn1 = await server.connection(1);
    expect(conn1.hello?.worker?.running.map((r) => r.runId)).toEqual([job.runId]);
    await eventually(() => !isAlive(grandchild), 'the stale job to be killed', 3000);
    await eventually(() => worker.snapshot().length === 0, 'the stale run to be forgotten');
    await sleep(100);
    expect(forRun(conn1, job.runId)).toEqual([]);
  });

  it('reports an unwritable work dir as an error result naming the path and errno', async () => {
    const server = await startServer();
    const dir = await tempDir();
    writeFileSync(join(dir, 'file'), '');
    const workDir = join(dir, 'file', 'work');
    await startWorker(server, { workDir });
    const conn = await server.connection(0);
    const job = assignment();
    conn.send({ type: 'assign', run: job });
    const finished = await conn.waitFor(finishedOf(job.runId), 'finished');
    expect(finished.result.kind).toBe('error');
    const message = finished.result.kind === 'error' ? finished.result.message : '';
    expect(message).toContain(workDir);
    expect(message).toContain('ENOTDIR');
    expect(forRun(conn, job.runId).map((m) => m.type)).toEqual(['finished']);
  });

  it('rejects assignments beyond capacity and while draining, then exits 0 once results are acknowledged', async () => {
    const server = await startServer();
    const { worker } = await startWorker(server, { capacity: 1 });
    const conn = await server.connection(0);
    const first = assignment({ script: 'sleep 0.4; echo first' });
    conn.send({ type: 'assign', run: first });
    await conn.waitFor((m) => m.type === 'started', 'started');
    const second = assignment();
    conn.send({ type: 'assign', run: second });
    const rejected = await conn.waitFor((m) => m.type === 'rejected' && m.runId === second.runId, 'rejected');
    expect(rejected).toMatchObject({ reason: 'worker is at capacity (1)' });

    worker.drain();
    const third = assignment();
    conn.send({ type: 'assign', run: third });
    expect(await conn.waitFor((m) => m.type === 'rejected' && m.runId === third.runId, 'rejected')).toMatchObject({
      reason: 'worker is draining',
    });
    expect(await worker.exited).toBe(0);
    expect(server.log(first.runId).finished[0]?.result).toEqual({ kind: 'exited', code: 0 });
    expect(server.text(first.runId, 'out')).toBe('first\n');
  });

  it('exits with code 4 and does not retry when the server refuses the token', async () => {
    const server = await startServer({
      reply: () => ({ type: 'error', error: { code: 'UNAUTHORIZED', message: 'unknown token' } }),
    });
    const { worker, lines } = await startWorker(server);
    expect(await worker.exited).toBe(4);
    await sleep(300);
    expect(server.connections).toHaveLength(1);
    expect(lines.map((l) => JSON.parse(l))).toContainEqual(
      expect.objectContaining({ level: 'error', event: 'worker.refused', code: 'UNAUTHORIZED' }),
    );
  });

  it('terminates a connection whose pings go unanswered, and reconnects', async () => {
    const server = await startServer({ autoPong: false, reply: () => welcome([], 100) });
    await startWorker(server);
    const conn0 = await server.connection(0);
    await server.connection(1, 3000);
    expect(conn0.received.filter((m) => m.type === 'heartbeat').length).toBeGreaterThanOrEqual(1);
  });
});
