/**
 * Cancel and timeout stop the whole process tree of a job: TERM to its process group, the kill
 * grace, then KILL. A queued run that is cancelled never runs.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, killLeftovers, procAlive, readPids, sleep, waitFor } from './harness.ts';
import { Api } from './wire.ts';

describe('cancel and timeout', () => {
  let c: Cluster;
  let api: Api;
  const pidFiles: string[] = [];
  beforeAll(async () => {
    c = await Cluster.start();
    c.startWorker('w1', { capacity: 2 });
    await c.waitForWorkers('w1');
    api = await Api.connect(c.url, c.tokens.admin);
  });
  afterAll(async () => {
    killLeftovers(pidFiles.flatMap(readPids));
    api?.close();
    await c?.stop();
  });

  /** Absolute pid files for a job: its shell ($$) and a background child ($!). */
  function pidPaths(name: string) {
    const main = join(c.dir, `${name}.main.pid`);
    const bg = join(c.dir, `${name}.bg.pid`);
    pidFiles.push(main, bg);
    return { main, bg };
  }

  async function pidsOf(p: { main: string; bg: string }): Promise<{ main: number; bg: number }> {
    await waitFor(() => readPids(p.main).length === 1 && readPids(p.bg).length === 1, 'the job to write its pids');
    return { main: readPids(p.main)[0]!, bg: readPids(p.bg)[0]! };
  }

  it('cancel TERMs the process group: the run is cancelled and the background child is gone', async () => {
    const p = pidPaths('cancelme');
    await c.schedule('cancelme', `echo $$ > ${p.main}\nsleep 300 & echo $! > ${p.bg}\nsleep 300\n`, [
      '--kill-grace',
      '1',
    ]);
    expect((await c.client(['execute', 'cancelme'])).code).toBe(0);
    const pids = await pidsOf(p);
    await waitFor(async () => (await api.run('cancelme/1')).state === 'running', 'the run to be running');
    expect(procAlive(pids.bg)).toBe(true);

    const r = await c.client(['cancel', 'cancelme/1', '--reason', 'test says stop']);
    expect(r.code, r.stderr).toBe(0);
    const t0 = Date.now();
    await waitFor(() => !procAlive(pids.bg) && !procAlive(pids.main), 'the job tree to die', 3000);
    expect(Date.now() - t0).toBeLessThan(1000); // TERM did it, within the grace
    await waitFor(async () => (await api.run('cancelme/1')).state === 'cancelled', 'the run to be cancelled', 5000);
    const view = await c.run('cancelme/1');
    expect(view).toMatchObject({ state: 'cancelled', result: { kind: 'cancelled' }, cancelReason: 'test says stop' });
    expect((await c.client(['watch', 'cancelme/1'])).code).toBe(1);
    const con = await c.client(['observe', 'cancelme/1']);
    expect(con.code).toBe(1);
    expect(con.stdout).toMatch(/\[builder\] cancelled/);
    expect(con.stdout).not.toMatch(/SIGKILL/);
  });

  it('a job that ignores TERM is KILLed after the grace', async () => {
    const p = pidPaths('stubborn');
    await c.schedule(
      'stubborn',
      `trap '' TERM\necho $$ > ${p.main}\nsleep 300 & echo $! > ${p.bg}\nwait\necho survived\nsleep 300\n`,
      ['--kill-grace', '1'],
    );
    expect((await c.client(['execute', 'stubborn'])).code).toBe(0);
    const pids = await pidsOf(p);
    await waitFor(async () => (await api.run('stubborn/1')).state === 'running', 'the run to be running');

    // the answer comes once the cancel is recorded; the worker gets it at the same moment
    expect((await c.client(['cancel', 'stubborn/1'])).code).toBe(0);
    const t0 = Date.now();
    // within the grace TERM changed nothing
    await sleep(300);
    expect(procAlive(pids.main) && procAlive(pids.bg)).toBe(true);
    await waitFor(() => !procAlive(pids.bg) && !procAlive(pids.main), 'KILL after the grace', 5000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
    await waitFor(async () => (await api.run('stubborn/1')).state === 'cancelled', 'the run to be cancelled', 5000);
    expect((await c.run('stubborn/1')).result).toMatchObject({ kind: 'cancelled' });
    const con = await c.client(['observe', 'stubborn/1']);
    expect(con.stdout).toMatch(/\[builder\].*SIGKILL/);
    expect(con.stdout).not.toContain('survived');
  });

  it('a background process that ignores TERM and let go of the console is KILLed too', async () => {
    // The shell dies of TERM at once and the pipes close (the child writes to /dev/null); the
    // child, ignoring TERM, is still in the job's process group and must get the KILL.
    const p = pidPaths('escapee');
    await c.schedule(
      'escapee',
      `echo $$ > ${p.main}\ntrap '' TERM\nsleep 300 >/dev/null 2>&1 </dev/null &\necho $! > ${p.bg}\ntrap - TERM\nsleep 300\n`,
      ['--kill-grace', '1'],
    );
    expect((await c.client(['execute', 'escapee'])).code).toBe(0);
    const pids = await pidsOf(p);
    await waitFor(async () => (await api.run('escapee/1')).state === 'running', 'the run to be running');
    expect((await c.client(['cancel', 'escapee/1'])).code).toBe(0);
    await waitFor(async () => (await api.run('escapee/1')).state === 'cancelled', 'the run to be cancelled', 5000);
    await waitFor(() => !procAlive(pids.main), 'the shell to die', 3000);
    // grace is 1 s: give it 3
    await waitFor(() => !procAlive(pids.bg), `the TERM-ignoring child ${pids.bg} to be KILLed after the grace`, 3000);
  });

  it('a TERM-ignoring process the job left behind in its group is KILLed after the grace', async () => {
    // Same path without a cancel: the job exits 0, the worker TERMs what is left of its group.
    const p = pidPaths('leaver');
    await c.schedule(
      'leaver',
      `echo $$ > ${p.main}\ntrap '' TERM\nsleep 300 >/dev/null 2>&1 </dev/null &\necho $! > ${p.bg}\ntrap - TERM\n`,
      ['--kill-grace', '1'],
    );
    expect((await c.client(['execute', 'leaver', '--follow'])).code).toBe(0);
    const pids = await pidsOf(p);
    await waitFor(() => !procAlive(pids.bg), `the left-behind child ${pids.bg} to be KILLed after the grace`, 3000);
  });

  it('--timeout ends the run as timeout, kills the tree, and watch exits 1', async () => {
    const p = pidPaths('slow');
    await c.schedule('slow', `echo $$ > ${p.main}\nsleep 300 & echo $! > ${p.bg}\nsleep 300\n`, [
      '--timeout',
      '1',
      '--kill-grace',
      '1',
    ]);
    expect((await c.client(['execute', 'slow'])).code).toBe(0);
    const watching = c.clientProc(['watch', 'slow/1']);
    const pids = await pidsOf(p);
    expect(await watching.exited).toBe(1);
    const view = await c.run('slow/1');
    expect(view).toMatchObject({ state: 'timeout', attempt: 1, result: { kind: 'timeout' } });
    await waitFor(() => !procAlive(pids.bg) && !procAlive(pids.main), 'the job tree to die', 3000);
    expect((await c.client(['observe', 'slow/1'])).stdout).toMatch(/\[builder\] timeout after 1s/);
  });

  it('cancelling a queued run cancels it at once and it never runs', async () => {
    const ran = join(c.dir, 'queued.ran');
    const release = join(c.dir, 'queued.release');
    // run 1 holds the job's only slot until the test releases it
    await c.schedule('queued', `echo $BUILDER_RUN >> ${ran}\nwhile [ ! -e ${release} ]; do sleep 0.05; done\n`, [
      '--concurrency',
      '1',
    ]);
    expect((await c.client(['execute', 'queued'])).code).toBe(0);
    expect((await c.client(['execute', 'queued'])).code).toBe(0);
    expect((await c.run('queued/2')).state).toBe('queued');

    const r = await c.client(['cancel', 'queued/2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ state: 'cancelled' });
    const view = await c.run('queued/2');
    expect(view).toMatchObject({ state: 'cancelled', result: { kind: 'cancelled' }, worker: null });

    writeFileSync(release, '');
    expect((await c.client(['watch', 'queued/1'])).code).toBe(0);
    await sleep(500); // a slot is free now: the cancelled run must not take it
    expect(await c.run('queued/2')).toMatchObject({ state: 'cancelled', worker: null });
    expect(existsSync(ran) ? readFileSync(ran, 'utf8') : '').toBe('1\n');
    // a finished run cannot be cancelled again
    expect((await c.client(['cancel', 'queued/2'])).code).not.toBe(0);
  });
});
