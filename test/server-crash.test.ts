/**
 * `kill -9` of the server with runs queued and running: nothing it acknowledged is lost, the
 * running run re-attaches when its worker reconnects and its console comes out whole.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, killLeftovers, readPids, sleep, waitFor } from './harness.ts';

const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}\n`).join('');

describe('server killed with SIGKILL', () => {
  let c: Cluster | undefined;
  let pidFile = '';
  afterEach(async () => {
    killLeftovers(readPids(pidFile));
    await c?.stop();
    c = undefined;
  });

  it('keeps queued runs, re-attaches the running one and records its whole console once', async () => {
    c = await Cluster.start(['--lease', '5s']);
    pidFile = join(c.dir, 'pids');
    c.startWorker('w1', { capacity: 2 });
    await c.waitForWorkers('w1');
    await c.schedule(
      'crash',
      `echo $$ >> ${pidFile}\nn=\${COUNT:-40}\ni=1\nwhile [ $i -le $n ]; do echo "line $i"; i=$((i+1)); sleep \${DELAY:-0.1}; done\n`,
      ['--concurrency', '1'],
    );
    // the first run outlasts the client calls below even on a loaded machine (each is a process start)
    expect((await c.client(['execute', 'crash', '--param', 'DELAY=0.25'])).code).toBe(0);
    expect((await c.client(['execute', 'crash', '--param', 'COUNT=5'])).code).toBe(0);
    expect((await c.client(['execute', 'crash', '--param', 'COUNT=5'])).code).toBe(0);

    const first = await c.run('crash/1');
    expect(first.state).toBe('running');
    expect((await c.run('crash/2')).state).toBe('queued');
    expect((await c.run('crash/3')).state).toBe('queued');
    const log = join(c.dataDir, 'logs', `${first.id}.log`);
    await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes('line 8\n'), 'run 1 to be mid-way');

    expect(await c.killServer('SIGKILL')).not.toBe(0);
    await sleep(1000); // the job keeps printing into the worker's window meanwhile
    await c.startServer();

    const watch = await c.client(['watch', 'crash/1']);
    expect(watch.code, watch.stdout + watch.stderr).toBe(0);
    const view = await c.run('crash/1');
    expect(view).toMatchObject({ state: 'succeeded', attempt: 1, result: { kind: 'exited', code: 0 }, worker: 'w1' });
    const observed = await c.client(['observe', 'crash/1']);
    expect(observed.code).toBe(0);
    expect(observed.stdout).toBe(numbered(40));

    for (const ref of ['crash/2', 'crash/3']) {
      const w = await c.client(['watch', ref]);
      expect(w.code, `${ref}: ${w.stdout}${w.stderr}`).toBe(0);
      expect(await c.run(ref)).toMatchObject({ state: 'succeeded', attempt: 1 });
      expect((await c.client(['observe', ref])).stdout).toBe(numbered(5));
    }
    // every run ran exactly once
    expect(readPids(pidFile)).toHaveLength(3);
    const runs = JSON.parse((await c.client(['runs', 'crash', '--json'])).stdout) as { state: string }[];
    expect(runs.map((r) => r.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    const info = JSON.parse((await c.client(['info', '--json'])).stdout) as { running: unknown[]; queued: unknown[] };
    expect(info.running).toEqual([]);
    expect(info.queued).toEqual([]);
  });

  it('records a run that finished while the server was down, with its console', async () => {
    c = await Cluster.start(['--lease', '5s']);
    pidFile = join(c.dir, 'pids');
    const done = join(c.dir, 'done');
    c.startWorker('w1');
    await c.waitForWorkers('w1');
    await c.schedule(
      'quick',
      `echo $$ >> ${pidFile}\nfor i in $(seq 1 20); do echo "line $i"; sleep 0.05; done\ntouch ${done}\n`,
    );
    expect((await c.client(['execute', 'quick'])).code).toBe(0);
    await waitFor(() => readPids(pidFile).length === 1, 'the job to start');
    await c.killServer('SIGKILL');
    await waitFor(() => existsSync(done), 'the job to finish while the server is down');
    await sleep(300);
    await c.startServer();

    const watch = await c.client(['watch', 'quick/1']);
    expect(watch.code, watch.stdout + watch.stderr).toBe(0);
    expect(await c.run('quick/1')).toMatchObject({
      state: 'succeeded',
      attempt: 1,
      result: { kind: 'exited', code: 0 },
    });
    expect((await c.client(['observe', 'quick/1'])).stdout).toBe(numbered(20));
    expect(readPids(pidFile)).toHaveLength(1);
  });
});
