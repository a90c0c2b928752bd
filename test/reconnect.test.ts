/**
 * A dropped worker connection mid-run: the worker reconnects within the lease, re-attaches and
 * resends what the server had not acknowledged. The run runs once; no line lost or doubled.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, killLeftovers, procAlive, readPids, sleep, tcpProxy, waitFor, type TcpProxy } from './harness.ts';
import { Api } from './wire.ts';

const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}\n`).join('');

describe('worker connection dropped mid-run', () => {
  let c: Cluster | undefined;
  let proxy: TcpProxy | undefined;
  let marker = '';
  afterEach(async () => {
    killLeftovers(readPids(marker));
    await proxy?.close();
    await c?.stop();
    c = proxy = undefined;
  });

  it('reconnects twice through a proxy; the run ran once and its console is whole and in order', async () => {
    c = await Cluster.start(['--lease', '5s']);
    marker = join(c.dir, 'marker');
    proxy = await tcpProxy(c.port);
    c.startWorker('w1', { args: ['--remote', `http://127.0.0.1:${proxy.port}`] });
    await c.waitForWorkers('w1');
    expect(proxy.accepted).toBe(1);

    await c.schedule(
      'chatty',
      `echo $$ >> ${marker}\ni=1\nwhile [ $i -le 200 ]; do echo "line $i"; i=$((i+1)); sleep 0.015; done\n`,
    );
    expect((await c.client(['execute', 'chatty'])).code).toBe(0);
    const live = c.clientProc(['observe', 'chatty/1']); // straight to the server, not through the proxy
    const { id } = await c.run('chatty/1');
    const log = join(c.dataDir, 'logs', `${id}.log`);
    const logText = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');

    await waitFor(() => logText().includes('line 30\n'), 'the job to be under way');
    proxy.drop();
    const afterFirst = logText();
    await waitFor(
      () => proxy!.accepted >= 2 && logText().length > afterFirst.length + 200,
      'the worker to reconnect and go on',
    );
    const api = await Api.connect(c.url, c.tokens.admin);
    expect((await api.run('chatty/1')).state).toBe('running');
    api.close();
    proxy.drop();
    const afterSecond = logText();
    await waitFor(
      () => proxy!.accepted >= 3 && logText().length > afterSecond.length + 200,
      'the worker to reconnect again',
    );
    expect(afterSecond).not.toContain('line 200\n'); // both drops were mid-run

    expect(await live.exited, live.output()).toBe(0);
    expect(live.stdout()).toBe(numbered(200));
    const view = await c.run('chatty/1');
    expect(view).toMatchObject({ state: 'succeeded', attempt: 1, worker: 'w1', result: { kind: 'exited', code: 0 } });
    const observed = await c.client(['observe', 'chatty/1']);
    expect(observed.code).toBe(0);
    expect(observed.stdout).toBe(numbered(200));
    expect(readPids(marker)).toHaveLength(1);
    expect(proxy.accepted).toBe(3);
  });

  it('survives drops while output streams as fast as the job can print', async () => {
    c = await Cluster.start(['--lease', '5s']);
    marker = join(c.dir, 'marker');
    proxy = await tcpProxy(c.port);
    c.startWorker('w1', { args: ['--remote', `http://127.0.0.1:${proxy.port}`] });
    await c.waitForWorkers('w1');
    // ~1.1 MB in bursts, with pauses so the drops land while data is in flight
    await c.schedule(
      'flood',
      `echo $$ >> ${marker}\nfor b in $(seq 0 19); do seq $((b*10000+1)) $((b*10000+10000)); sleep 0.2; done\n`,
    );
    expect((await c.client(['execute', 'flood'])).code).toBe(0);
    const { id } = await c.run('flood/1');
    const log = join(c.dataDir, 'logs', `${id}.log`);
    const size = () => (existsSync(log) ? readFileSync(log).length : 0);
    for (let drop = 1; drop <= 3; drop++) {
      const before = size();
      await waitFor(() => proxy!.accepted === drop && size() > before + 50_000, `output before drop ${drop}`);
      proxy.drop();
    }
    const w = await c.client(['watch', 'flood/1']);
    expect(w.code, w.stdout + w.stderr).toBe(0);
    expect(await c.run('flood/1')).toMatchObject({ state: 'succeeded', attempt: 1 });
    const observed = await c.client(['observe', 'flood/1']);
    const expected = Array.from({ length: 200_000 }, (_, i) => `${i + 1}\n`).join('');
    expect(observed.stdout.length).toBe(expected.length);
    expect(observed.stdout === expected).toBe(true);
    expect(readPids(marker)).toHaveLength(1);
    expect(proxy.accepted).toBeGreaterThanOrEqual(4);
  });

  it('a worker cut off longer than the lease is fenced: attempt 2 runs elsewhere, attempt 1 is killed when it returns', async () => {
    c = await Cluster.start(['--lease', '2s']);
    marker = join(c.dir, 'marker');
    proxy = await tcpProxy(c.port);
    c.startWorker('w1', { args: ['--remote', `http://127.0.0.1:${proxy.port}`] });
    await c.waitForWorkers('w1');
    await c.schedule(
      'fenced',
      `echo $$ >> ${marker}\nif [ "$BUILDER_ATTEMPT" = 1 ]; then\n  for i in $(seq 1 300); do echo "a1 line $i"; sleep 0.1; done\nfi\necho "attempt $BUILDER_ATTEMPT ran"\n`,
      ['--retries', '1', '--retry-backoff', '0'],
    );
    expect((await c.client(['execute', 'fenced'])).code).toBe(0);
    const { id } = await c.run('fenced/1');
    const log = join(c.dataDir, 'logs', `${id}.log`);
    await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes('a1 line 3\n'), 'attempt 1 to print');
    expect(await c.run('fenced/1')).toMatchObject({ state: 'running', worker: 'w1', attempt: 1 });
    c.startWorker('w2');
    await c.waitForWorkers('w2');

    proxy.blocked = true;
    proxy.drop();
    const w = await c.client(['watch', 'fenced/1']);
    expect(w.code, w.stdout + w.stderr).toBe(0);
    expect(await c.run('fenced/1')).toMatchObject({ state: 'succeeded', attempt: 2, worker: 'w2' });
    const [first, second] = readPids(marker);
    expect(second).toBeDefined();
    const before = (await c.client(['observe', 'fenced/1'])).stdout;

    // w1 comes back still running attempt 1: the server must tell it to kill it
    const accepted = proxy.accepted;
    proxy.blocked = false;
    await waitFor(() => proxy!.accepted > accepted, 'w1 to reconnect');
    await c.waitForWorkers('w1');
    await waitFor(() => !procAlive(first!), `the stale attempt 1 (pid ${first}) to be killed`, 5000);
    await sleep(500);
    const after = await c.client(['observe', 'fenced/1']);
    expect(after.stdout).toBe(before); // nothing of the stale attempt arrived late
    expect(await c.run('fenced/1')).toMatchObject({
      state: 'succeeded',
      attempt: 2,
      worker: 'w2',
      result: { kind: 'exited', code: 0 },
    });
    const lines = after.stdout.trimEnd().split('\n');
    expect(lines.at(-1)).toBe('attempt 2 ran');
    expect(lines).not.toContain('attempt 1 ran');
    const a1 = lines.filter((l) => l.startsWith('a1 line '));
    expect(a1).toEqual(a1.map((_, i) => `a1 line ${i + 1}`));
    expect(lines.findIndex((l) => l.startsWith('[builder]'))).toBeGreaterThan(lines.indexOf(a1.at(-1)!));
  });
});
