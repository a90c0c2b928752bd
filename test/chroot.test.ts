/**
 * The chroot executor through real builder-server + builder-worker processes: a job runs in the
 * sandbox, a timeout kills its whole tree, and a worker SIGKILLed mid-job leaves a running
 * sandbox that the restarted worker's cleanup() removes. Needs root and a rootfs (see
 * packages/worker/src/test-support/chroot-root.ts).
 */
import { readdirSync, existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chrootSkipReason,
  ensureRootfs,
  ROOTFS,
  ROOTFS_TIMEOUT_MS,
  TEST_ID_RANGE,
} from '../packages/worker/src/test-support/chroot-root.ts';
import { Cluster, waitFor } from './harness.ts';

const skip = chrootSkipReason();
if (skip) console.warn(`chroot integration tests skipped: ${skip}`);

const chrootArgs = [
  ...['--executor', 'chroot', '--root', ROOTFS, '--id-range', TEST_ID_RANGE],
  ...['--memory-limit', '256M', '--pids-limit', '256'],
];

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[1]?.startsWith(dir));
}
function pgrep(pattern: string): string {
  return spawnSync('pgrep', ['-f', pattern]).stdout.toString().trim();
}
function cgroups(): string[] {
  const dirs = existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? ['/sys/fs/cgroup/builder']
    : ['memory', 'pids', 'cpu'].map((c) => `/sys/fs/cgroup/${c}/builder`);
  return dirs.flatMap((d) => (existsSync(d) ? readdirSync(d).filter((e) => /-\d+$/.test(e)) : []));
}

describe.skipIf(skip !== undefined)('chroot executor through server and worker', () => {
  let c: Cluster;
  beforeAll(async () => {
    await ensureRootfs();
    c = await Cluster.start();
  }, ROOTFS_TIMEOUT_MS);
  afterAll(async () => {
    await c?.stop();
  });

  it('runs a job in the sandbox, times one out with its tree, SIGKILLed worker → cleanup on restart', async () => {
    const workDir = join(c.dir, 'work-cw');
    let w = c.startWorker('cw', { args: chrootArgs });
    await c.waitForWorkers('cw');

    await c.schedule(
      'inside',
      'echo "host=$(hostname) uid=$(id -u) out=$BUILDER_OUTPUT"; if test -e /work; then echo SEES-WORK; fi\n',
    );
    const r = await c.client(['execute', 'inside', '--follow']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('host=inside-1 uid=65534 out=/builder/output');
    expect(r.stdout).not.toContain('SEES-WORK');

    // artifacts leave the sandbox through its output dir; absolute links there mean the
    // sandbox's paths, which from the worker point outside the dir: refused
    await c.schedule(
      'pkgs',
      'cat /etc/debian_version > "$BUILDER_OUTPUT/version"; ln -s version "$BUILDER_OUTPUT/v"\n' +
        'echo "# Built in the sandbox" > "$BUILDER_SUMMARY"\n',
    );
    expect((await c.client(['execute', 'pkgs', '--follow'])).code).toBe(0);
    const listed = JSON.parse((await c.client(['artifacts', 'pkgs/1', '--json'])).stdout).files;
    expect(listed.map((f: { path: string }) => f.path)).toEqual(['v', 'version']);
    // the summary as the job saw its path, and the cost from the run's cgroup (CPU sampled when
    // cgroup v1 has no cpuacct next to cpu)
    const page = await (await fetch(`${c.url}/api/job/pkgs/run/1`)).json();
    expect(page.summary.markdown).toBe('# Built in the sandbox\n');
    expect(page.usage.source).toMatch(/^cgroup/);
    expect(page.usage.peakMemoryBytes).toBeGreaterThan(0);
    await c.schedule('sneaky', 'ln -s /etc/shadow "$BUILDER_OUTPUT/shadow"\n');
    expect((await c.client(['execute', 'sneaky', '--follow'])).code).toBe(1);
    expect(JSON.stringify((await c.run('sneaky/1')).result)).toContain('pointing outside the output dir');

    await c.schedule('slow', 'sleep 1003 & setsid sleep 1003 & sleep 1003\n', ['--timeout', '1', '--kill-grace', '1']);
    const t = await c.client(['execute', 'slow', '--follow']);
    expect(t.code).toBe(1);
    expect((await c.run('slow/1')).result).toMatchObject({ kind: 'timeout' });
    await waitFor(() => pgrep('sleep 1003') === '', 'the timed-out tree to be gone', 5000);

    await c.schedule('crash', 'echo up; setsid sleep 1004 & sleep 1004\n');
    expect((await c.client(['execute', 'crash'])).code).toBe(0);
    await waitFor(() => pgrep('sleep 1004') !== '', 'the job to run', 10_000);
    w.child.kill('SIGKILL');
    await w.exited;
    expect(pgrep('sleep 1004')).not.toBe(''); // the sandbox outlived its worker
    expect(cgroups().length).toBeGreaterThan(0);
    w = c.startWorker('cw', { args: chrootArgs });
    await c.waitForWorkers('cw');
    await waitFor(() => pgrep('sleep 1004') === '', 'cleanup() to kill the stale sandbox', 10_000);
    expect(mountsUnder(workDir)).toEqual([]);
    expect(readdirSync(workDir).filter((e) => e !== '.dev')).toEqual([]);
    expect(cgroups().filter((g) => existsSync(join(workDir, g)))).toEqual([]);
  }, 120_000);
});
