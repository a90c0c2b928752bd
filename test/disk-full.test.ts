/**
 * The data dir on a small tmpfs that fills up while a job prints past the free space and leaves an
 * artifact bigger than it: the server stays up and serves reads, refuses new runs with
 * STORAGE_FULL, and once the test frees space it carries on by itself; the console comes out
 * complete and exactly once, and every blob in the store is what its name says. And a change
 * whose COMMIT does not fit (SQLITE_FULL) is rolled back and answered STORAGE_FULL; a server
 * killed and restarted on the still-full disk comes up and refuses again instead of crashing.
 * Root only: it mounts and unmounts the tmpfs.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, killLeftovers, readPids, waitFor } from './harness.ts';

const MiB = 1024 * 1024;
const skip = process.getuid?.() === 0 ? undefined : 'mounting a tmpfs needs root';
if (skip) console.warn(`disk-full test skipped: ${skip}`);

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
/** ~5.3 MB of numbered lines: well past the 3 MiB left free. */
const LINES = 450_000;
const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}`);

function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'ignore' });
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'ignore' }); // still busy: detach it anyway
  }
}

describe.skipIf(skip !== undefined)('a full data dir (tmpfs)', () => {
  let c: Cluster | undefined;
  let mounted = '';
  let pidFile = '';
  let hookDir = '';
  afterEach(async () => {
    killLeftovers(readPids(pidFile));
    await c?.kill(); // first: nothing may hold the mount
    if (mounted) unmount(mounted);
    mounted = '';
    await c?.stop();
    c = undefined;
    if (hookDir) rmSync(hookDir, { recursive: true, force: true });
  });

  /** A cluster whose data dir (database and tokens made by the harness) is a 32 MiB tmpfs. */
  async function onTmpfs(serverArgs: string[]): Promise<Cluster> {
    const cluster = new Cluster(['--resume-free', '8M', ...serverArgs]);
    c = cluster;
    const original = `${cluster.dataDir}.orig`;
    renameSync(cluster.dataDir, original);
    mkdirSync(cluster.dataDir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m,mode=0700', 'tmpfs', cluster.dataDir]);
    mounted = cluster.dataDir;
    execFileSync('cp', ['-a', `${original}/.`, cluster.dataDir]);
    await cluster.startServer();
    return cluster;
  }

  /** Fill the data dir up to `left` bytes free; returns the filler to delete. */
  function fill(cluster: Cluster, left: number): string {
    const s = statfsSync(cluster.dataDir);
    const filler = join(cluster.dataDir, 'filler');
    writeFileSync(filler, Buffer.alloc(Math.max(0, s.bavail * s.bsize - left)));
    return filler;
  }

  const metrics = async () => (await fetch(`${c!.url}/metrics`)).text();

  it('refuses writes instead of crashing, resumes by itself and loses nothing it acknowledged', async () => {
    // an after-hook records the alerts
    hookDir = mkdtempSync(join(tmpdir(), 'builder-hook-'));
    const hook = join(hookDir, 'after.sh');
    writeFileSync(hook, `#!/bin/sh\necho "$EVENT $CAUSE" >> ${hookDir}/alerts\n`);
    chmodSync(hook, 0o755);
    c = await onTmpfs(['--alert-after', hook]);
    c.startWorker('w1');
    await c.waitForWorkers('w1');
    pidFile = join(c.dir, 'pids');

    const artifact = randomBytes(8 * MiB);
    writeFileSync(join(c.dir, 'big.bin'), artifact);
    await c.schedule(
      'flood',
      [
        `echo $$ >> ${pidFile}`,
        `awk 'BEGIN { for (i = 1; i <= ${LINES}; i++) print "line " i }'`,
        `cp ${join(c.dir, 'big.bin')} "$BUILDER_OUTPUT/big.bin"`,
      ].join('\n'),
    );
    await c.schedule('small', 'echo small');

    // leave 3 MiB: less than the console, far less than the artifact
    const filler = fill(c, 3 * MiB);

    expect((await c.client(['execute', 'flood'])).code).toBe(0);
    await waitFor(async () => /^builder_storage_refusing_writes 1$/m.test(await metrics()), 'the server to refuse');
    // the job printed into the worker's window; its artifacts are refused (507) and retried
    await waitFor(
      async () => /^builder_artifact_transfers_total\{outcome="failed"\} [1-9]/m.test(await metrics()),
      'the artifact transfer to be refused',
    );

    // still up, still serving reads, saying why it refuses
    expect(c.server!.child.exitCode).toBeNull();
    expect((await fetch(`${c.url}/`)).status).toBe(200);
    const during = await metrics();
    expect(during).toMatch(/^builder_storage_free_bytes \d+$/m);
    expect((await c.client(['runs', 'flood'])).code).toBe(0);
    await waitFor(() => existsSync(join(hookDir, 'alerts')), 'the storage-full alert');
    expect(readFileSync(join(hookDir, 'alerts'), 'utf8')).toMatch(/^storage-full .+/);
    const refused = await c.client(['execute', 'small']);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/disk is full.*STORAGE_FULL/);

    rmSync(filler);
    const watch = await c.client(['watch', 'flood/1'], { timeoutMs: 120_000 });
    expect(watch.code, watch.stdout + watch.stderr).toBe(0);
    expect(await c.run('flood/1')).toMatchObject({ state: 'succeeded', attempt: 1 });
    expect(await metrics()).toMatch(/^builder_storage_refusing_writes 0$/m);
    expect(c.server!.child.exitCode).toBeNull(); // the same process throughout

    // every line exactly once, in order (the rest are the worker's [builder] notes)
    const consoleText = await (await fetch(`${c.url}/job/flood/run/1/console.txt`)).text();
    const lines = consoleText.split('\n').filter((l) => !l.startsWith('[builder]') && l !== '');
    expect(lines.length).toBe(LINES);
    expect(lines).toEqual(numbered(LINES));
    expect(consoleText).toMatch(/\[builder\] sending artifacts failed \(the server's disk is full/);

    const download = await fetch(`${c.url}/job/flood/run/1/artifacts/big.bin`);
    expect(download.status).toBe(200);
    expect(sha(Buffer.from(await download.arrayBuffer()))).toBe(sha(artifact));
    const blobDir = join(c.dataDir, 'artifacts', 'blobs');
    const blobs = existsSync(blobDir)
      ? readdirSync(blobDir).flatMap((p) => readdirSync(join(blobDir, p)).map((n) => join(blobDir, p, n)))
      : [];
    expect(blobs.length).toBeGreaterThan(0);
    for (const b of blobs) expect(sha(readFileSync(b)), b).toBe(b.slice(b.lastIndexOf('/') + 1));

    // and new runs are taken again
    const small = await c.client(['execute', 'small', '--follow']);
    expect(small.code, small.stderr).toBe(0);
    expect(readPids(pidFile)).toHaveLength(1); // the job ran once
  });

  it('rolls back a commit that does not fit (SQLITE_FULL), answers STORAGE_FULL and takes it once there is room', async () => {
    c = await onTmpfs([]);
    // a job of 1 MiB: its commit needs about that much more WAL than the disk has left
    const script = `: '${'x'.repeat(MiB - 64)}'\necho huge\n`;
    const filler = fill(c, 256 * 1024);
    const refused = await c.client([
      'schedule',
      'huge',
      '--platform',
      'debian-12',
      '--script',
      c.script('huge.sh', script),
    ]);
    expect(refused.code, refused.stderr).toBe(4);
    expect(refused.stderr).toMatch(/disk is full.*STORAGE_FULL/);
    expect(await metrics()).toMatch(/^builder_storage_refusing_writes 1$/m);
    expect(c.server!.child.exitCode).toBeNull();
    const during = await c.client(['jobs', '--json']);
    expect(during.code).toBe(0);
    expect(JSON.parse(during.stdout)).toEqual([]); // nothing of the rolled-back batch

    rmSync(filler);
    await waitFor(async () => /^builder_storage_refusing_writes 0$/m.test(await metrics()), 'writes to resume');
    const saved = await c.client([
      'schedule',
      'huge',
      '--platform',
      'debian-12',
      '--script',
      c.script('huge.sh', script),
    ]);
    expect(saved.code, saved.stderr).toBe(0);
    const jobs = JSON.parse((await c.client(['jobs', '--json'])).stdout) as { name: string }[];
    expect(jobs.map((j) => j.name)).toEqual(['huge']);
  });

  it('restarted (kill -9) on the still-full disk while the worker resends: comes up, refuses again, loses nothing', async () => {
    c = await onTmpfs([]);
    c.startWorker('w1');
    await c.waitForWorkers('w1');
    pidFile = join(c.dir, 'pids');
    await c.schedule(
      'flood',
      `echo $$ >> ${pidFile}\nawk 'BEGIN { for (i = 1; i <= ${LINES}; i++) print "line " i }'\n`,
    );
    const filler = fill(c, 3 * MiB);
    expect((await c.client(['execute', 'flood'])).code).toBe(0);
    await waitFor(async () => /^builder_storage_refusing_writes 1$/m.test(await metrics()), 'the server to refuse');

    // the issue this answers: the restarted server died again as soon as the worker resent
    expect(await c.killServer('SIGKILL')).not.toBe(0);
    await c.startServer();
    await waitFor(async () => /^builder_storage_refusing_writes 1$/m.test(await metrics()), 'it to refuse again');
    expect((await fetch(`${c.url}/`)).status).toBe(200);
    expect(c.server!.child.exitCode).toBeNull();

    rmSync(filler);
    const watch = await c.client(['watch', 'flood/1'], { timeoutMs: 120_000 });
    expect(watch.code, watch.stdout + watch.stderr).toBe(0);
    expect(await c.run('flood/1')).toMatchObject({ state: 'succeeded', attempt: 1 });
    const consoleText = await (await fetch(`${c.url}/job/flood/run/1/console.txt`)).text();
    expect(consoleText.split('\n').filter((l) => !l.startsWith('[builder]') && l !== '')).toEqual(numbered(LINES));
    expect(readPids(pidFile)).toHaveLength(1);
  });
});
