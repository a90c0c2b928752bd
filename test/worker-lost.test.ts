/**
 * `kill -9` of a worker mid-run: after the lease the attempt is lost; with retries the next
 * attempt runs on another worker of the platform, without them the run ends `lost`.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, killLeftovers, readPids, waitFor } from './harness.ts';
import { Api } from './wire.ts';

describe('a worker killed with SIGKILL mid-run', () => {
  let c: Cluster | undefined;
  let pidFile = '';
  afterEach(async () => {
    killLeftovers(readPids(pidFile));
    await c?.stop();
    c = undefined;
  });

  async function setup(): Promise<Cluster> {
    c = await Cluster.start(['--lease', '2s']);
    pidFile = join(c.dir, 'pids');
    c.startWorker('w1');
    await c.waitForWorkers('w1');
    return c;
  }

  /** Attempt 1 hangs (until the test kills its worker), later attempts succeed at once. */
  const script = () =>
    `echo $$ >> ${pidFile}\necho "attempt $BUILDER_ATTEMPT on $BUILDER_PLATFORM"\nif [ "$BUILDER_ATTEMPT" = 1 ]; then sleep 60; fi\necho done\n`;

  it('loses attempt 1 after the lease and runs attempt 2 on the other worker', async () => {
    const c = await setup();
    await c.schedule('flaky', script(), ['--retries', '1', '--retry-backoff', '0']);
    expect((await c.client(['execute', 'flaky'])).code).toBe(0);
    const api = await Api.connect(c.url, c.tokens.admin);
    await waitFor(
      async () => (await api.run('flaky/1')).state === 'running' && readPids(pidFile).length === 1,
      'attempt 1 to run',
    );
    api.close();
    expect((await c.run('flaky/1')).worker).toBe('w1');
    c.startWorker('w2');
    await c.waitForWorkers('w2');

    const watching = c.clientProc(['watch', 'flaky/1']);
    const killedAt = Date.now();
    c.workers.get('w1')!.child.kill('SIGKILL');
    await c.workers.get('w1')!.exited;

    expect(await watching.exited).toBe(0);
    // not before the lease ran out: the worker was merely silent
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(1500);
    const view = await c.run('flaky/1');
    expect(view).toMatchObject({ state: 'succeeded', attempt: 2, worker: 'w2', result: { kind: 'exited', code: 0 } });
    expect(readPids(pidFile)).toHaveLength(2);

    const observed = await c.client(['observe', 'flaky/1']);
    expect(observed.code).toBe(0);
    const lines = observed.stdout.split('\n');
    expect(
      lines.filter((l) => l.startsWith('[builder]') && /attempt 1\b.*\blost\b/.test(l)).length,
    ).toBeGreaterThanOrEqual(1);
    expect(lines.filter((l) => l === 'attempt 1 on debian-12')).toHaveLength(1);
    expect(lines.filter((l) => l === 'attempt 2 on debian-12')).toHaveLength(1);
    expect(lines.indexOf('attempt 1 on debian-12')).toBeLessThan(lines.findIndex((l) => l.startsWith('[builder]')));
    expect(lines.findIndex((l) => l.startsWith('[builder]'))).toBeLessThan(lines.indexOf('attempt 2 on debian-12'));
    expect(lines.filter((l) => l === 'done')).toHaveLength(1);
  });

  it('without retries the run ends lost and execute --follow and watch exit 1', async () => {
    const c = await setup();
    await c.schedule('fragile', script(), ['--retries', '0']);
    const following = c.clientProc(['execute', 'fragile', '--follow']);
    await waitFor(() => following.stdout().includes('attempt 1 on debian-12'), 'the job to print', 15_000);
    const view = await c.run('fragile/1');
    expect(view).toMatchObject({ state: 'running', worker: 'w1' });
    const watching = c.clientProc(['watch', 'fragile/1']);
    await new Promise((r) => setTimeout(r, 500));

    c.workers.get('w1')!.child.kill('SIGKILL');
    expect(await following.exited).toBe(1);
    expect(await watching.exited).toBe(1);
    expect(await c.run('fragile/1')).toMatchObject({ state: 'lost', attempt: 1, result: { kind: 'lost' } });
    const observed = await c.client(['observe', 'fragile/1']);
    expect(observed.code).toBe(1);
    expect(observed.stdout).toMatch(/^\[builder\] .*attempt 1 lost$/m);
  });
});
