import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, waitFor } from './harness.ts';

describe('builder end to end: server, worker and client as real processes', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await Cluster.start();
    c.startWorker('w1', { capacity: 2 });
    await c.waitForWorkers('w1');
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('schedules a job, executes it with parameters and follows it to success', async () => {
    await c.schedule(
      'nightly',
      'echo "rev=$REV job=$BUILDER_JOB run=$BUILDER_RUN platform=$BUILDER_PLATFORM"\necho to-stderr >&2\ntest -d "$BUILDER_OUTPUT"\n',
      ['--cron', '0 3 * * *', '--tz', 'Europe/Berlin', '--timeout', '3600', '--retries', '2'],
    );
    const r = await c.client(['execute', 'nightly', '--param', 'REV=abc123', '--follow']);
    expect(r.stderr + r.stdout).toContain('rev=abc123 job=nightly run=1 platform=debian-12');
    expect(r.stdout + r.stderr).toContain('to-stderr');
    expect(r.code).toBe(0);

    const info = JSON.parse((await c.client(['info', 'nightly/1', '--json'])).stdout);
    expect(info.state).toBe('succeeded');
    expect(info.result).toEqual({ kind: 'exited', code: 0 });
    expect(info.params).toEqual({ REV: 'abc123' });
    expect(info.worker).toBe('w1');

    const jobs = JSON.parse((await c.client(['jobs', '--json'])).stdout);
    expect(jobs.find((j: { name: string }) => j.name === 'nightly')).toMatchObject({
      schedule: '0 3 * * *',
      timezone: 'Europe/Berlin',
      retries: 2,
    });
  });

  it('exits 1 for a failed run and says how it ended', async () => {
    await c.schedule('broken', 'echo about to fail\nexit 3\n');
    const r = await c.client(['execute', 'broken', '--follow']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('about to fail');
    expect(r.stderr).toContain('exited 3');
    const runs = await c.client(['runs', 'broken']);
    expect(runs.code).toBe(0);
    expect(runs.stdout).toContain('failed');
  });

  it('observes a finished run: the whole console, and its status as exit code', async () => {
    await c.schedule('chatty', 'for i in 1 2 3 4 5; do echo "line $i"; done\n');
    expect((await c.client(['execute', 'chatty', '--follow'])).code).toBe(0);
    const r = await c.client(['observe', 'chatty/1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('line 1\nline 2\nline 3\nline 4\nline 5\n');
    const w = await c.client(['watch', 'chatty/1']);
    expect(w.code).toBe(0);
  });

  it('watch --job finds the run by its parameters and exits with its status', async () => {
    await c.schedule('param', 'sleep 0.5\ntest "$REV" = good\n');
    const watching = c.clientProc(['watch', '--job', 'param', '--param', 'REV=bad']);
    await new Promise((r) => setTimeout(r, 300));
    await c.client(['execute', 'param', '--param', 'REV=good']);
    await c.client(['execute', 'param', '--param', 'REV=bad']);
    expect(await watching.exited).toBe(1);
  });

  it('gives documented exit codes for bad input', async () => {
    expect((await c.client(['execute', 'no-such-job'])).code).toBe(3);
    expect((await c.client(['observe', 'nightly/999'])).code).toBe(3);
    const badCron = await c.client([
      'schedule',
      'x',
      '--platform',
      'debian-12',
      '--script',
      c.script('x.sh', 'true'),
      '--cron',
      '99 * * * *',
    ]);
    expect(badCron.code).toBe(2);
    expect(badCron.stderr).toMatch(/invalid cron expression/);
    expect(badCron.stderr.trim().split('\n')).toHaveLength(1);
    const badTz = await c.client([
      'schedule',
      'x',
      '--platform',
      'debian-12',
      '--script',
      c.script('x.sh', 'true'),
      '--tz',
      'Mars/Olympus',
      '--cron',
      '@daily',
    ]);
    expect(badTz.code).toBe(2);
    expect(badTz.stderr).toMatch(/time zone/);
    expect((await c.client(['schedule'])).code).toBe(2);
    expect((await c.client(['frobnicate'])).code).toBe(2);
    expect((await c.client(['jobs'], { token: 'bld_admin_not-a-real-token' })).code).toBe(4);
    expect((await c.client(['jobs'], { env: { BUILDER_REMOTE: 'http://127.0.0.1:9' } })).code).toBe(4);
    // a read token may look but not change anything
    expect((await c.client(['jobs'], { token: c.tokens.read })).code).toBe(0);
    expect((await c.client(['execute', 'nightly'], { token: c.tokens.read })).code).toBe(4);
    // a worker token is not a client token
    expect((await c.client(['jobs'], { token: c.tokens.worker })).code).toBe(4);
  });

  it('says why a queued run waits, and runs it once the reason is gone', async () => {
    await c.client(['schedule', 'other', '--platform', 'freebsd-14', '--script', c.script('o.sh', 'true')]);
    await c.client(['execute', 'other']);
    let info = await c.client(['info']);
    expect(info.stdout).toContain('no worker for platform freebsd-14 is connected');

    await c.client(['drop-platform', 'debian-12']);
    await c.schedule('dropped', 'true');
    await c.client(['execute', 'dropped']);
    info = await c.client(['runs', 'dropped']);
    expect(info.stdout).toContain('platform debian-12 is dropped');
    await c.client(['undrop-platform', 'debian-12']);
    expect((await c.client(['watch', 'dropped/1'])).code).toBe(0);

    const release = `${c.dir}/release-solo`;
    await c.schedule('solo', `while [ ! -e ${release} ]; do sleep 0.1; done\n`);
    await c.client(['execute', 'solo']);
    await c.client(['execute', 'solo']);
    const runs = JSON.parse((await c.client(['runs', 'solo', '--json'])).stdout) as {
      number: number;
      state: string;
      waiting: string | null;
    }[];
    const second = runs.find((r) => r.number === 2)!;
    expect(second.state).toBe('queued');
    expect(second.waiting).toMatch(/concurrency limit/);
    writeFileSync(release, '');
    expect((await c.client(['watch', 'solo/2'])).code).toBe(0);
  });

  it('unschedules and reschedules', async () => {
    await c.schedule('temp', 'true', ['--period', 'daily']);
    const re = await c.client(['reschedule', 'temp', '2030-01-01T00:00:00Z', '--json']);
    expect(re.code).toBe(0);
    expect(JSON.parse(re.stdout).nextRunAt).toBe(Date.parse('2030-01-01T00:00:00Z'));
    expect((await c.client(['unschedule', 'temp'])).code).toBe(0);
    expect((await c.client(['execute', 'temp'])).code).toBe(3);
  });

  it('fires cron schedules on the running server', async () => {
    // six fields: every second
    await c.schedule('tick', 'echo tick\n', ['--cron', '* * * * * *']);
    await waitFor(async () => {
      const runs = JSON.parse((await c.client(['runs', 'tick', '--json'])).stdout) as {
        state: string;
        trigger: string;
      }[];
      return runs.filter((r) => r.state === 'succeeded' && r.trigger === 'schedule').length >= 2;
    }, 'two scheduled runs of tick');
    expect((await c.client(['unschedule', 'tick'])).code).toBe(0);
  });
});
