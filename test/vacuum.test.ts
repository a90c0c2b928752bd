import { createHash } from 'node:crypto';
import { existsSync, readdirSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, serverCommand, waitFor } from './harness.ts';

const sha = (data: string) => createHash('sha256').update(data).digest('hex');

const vacuum = (args: string[]) => serverCommand(['vacuum', ...args]);

describe('artifact retention: builder-server vacuum and --retain-latest', () => {
  let c: Cluster;
  const blobDir = () => join(c.dataDir, 'artifacts', 'blobs');
  const blobFile = (hash: string) => join(blobDir(), hash.slice(0, 2), hash);
  const files = async (ref: string) => {
    const r = await c.client(['artifacts', ref, '--json']);
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { files: { path: string }[] }).files.map((f) => f.path);
  };

  beforeAll(async () => {
    c = await Cluster.start(['--retain-latest', '3']);
    c.startWorker('w1');
    await c.waitForWorkers('w1');
    // every pkg run: one file of its own, one the same in every run (stored once)
    await c.schedule('pkg', 'cd "$BUILDER_OUTPUT"\necho "build $BUILDER_RUN" > own.txt\necho same > shared.txt\n');
    await c.schedule('other', 'echo "other $BUILDER_RUN" > "$BUILDER_OUTPUT/o.txt"\n');
    for (const job of ['pkg', 'pkg', 'pkg', 'pkg', 'other', 'other']) {
      const r = await c.client(['execute', job, '--follow']);
      expect(r.code, r.stderr).toBe(0);
    }
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('applies --retain-latest when the server starts', async () => {
    expect(await files('pkg/1')).toEqual(['own.txt', 'shared.txt']);
    await c.killServer('SIGTERM');
    await c.startServer();
    await waitFor(() => c.server!.output().includes('"event":"artifacts.vacuum"'), 'the retention pass at start');
    const line = c
      .server!.output()
      .split('\n')
      .find((l) => l.includes('"event":"artifacts.vacuum"'))!;
    // pkg#1 is the fourth newest; its own blob is too fresh to collect (a transfer could be under way)
    expect(JSON.parse(line)).toMatchObject({ keepLatest: 3, runs: 1, files: 2, blobsDeleted: 0 });
    expect(await files('pkg/1')).toEqual([]);
    expect(await files('pkg/2')).toEqual(['own.txt', 'shared.txt']);
    expect(existsSync(blobFile(sha('build 1\n')))).toBe(true);
  });

  it('strips old runs and collects their blobs while the server runs', async () => {
    await c.waitForWorkers('w1');
    // as if the transfers were two hours ago: past the grace period that protects fresh blobs
    const past = new Date(Date.now() - 2 * 3_600_000);
    for (const fan of readdirSync(blobDir())) {
      for (const name of readdirSync(join(blobDir(), fan))) utimesSync(join(blobDir(), fan, name), past, past);
    }

    const dry = await vacuum(['--data-dir', c.dataDir, '--keep-latest', '1', '--job', 'pkg', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan).toMatchObject({
      dryRun: true,
      store: `local ${blobDir()}`,
      runs: [
        { job: 'pkg', number: 2, platform: 'debian-12', files: 2, bytes: 13 },
        { job: 'pkg', number: 3, platform: 'debian-12', files: 2, bytes: 13 },
      ],
      files: 4,
      blobsDeleted: 3, // build 1 (left by the server's pass), build 2, build 3
    });
    expect(await files('pkg/2')).toEqual(['own.txt', 'shared.txt']);
    expect(existsSync(blobFile(sha('build 1\n')))).toBe(true);

    const r = await vacuum(['--data-dir', c.dataDir, '--keep-latest', '1', '--job', 'pkg']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      'pkg#2 debian-12: 2 files, 13 B\n' +
        'pkg#3 debian-12: 2 files, 13 B\n' +
        `removed the artifacts of 2 runs (4 files, 26 B); deleted 3 blobs (24 B) from local ${blobDir()}\n`,
    );
    // 3 × "build N\n": build 1 was stripped by the server's own pass, its blob only collected now
    for (const n of [1, 2, 3]) expect(existsSync(blobFile(sha(`build ${n}\n`)))).toBe(false);
    // what the kept run and the other job refer to stays, and still downloads
    for (const data of ['build 4\n', 'same\n', 'other 1\n', 'other 2\n'])
      expect(existsSync(blobFile(sha(data)))).toBe(true);
    expect(await files('pkg/2')).toEqual([]);
    expect(await files('pkg/4')).toEqual(['own.txt', 'shared.txt']);
    expect(await files('other/1')).toEqual(['o.txt']);
    const info = await c.run('pkg/2');
    expect(info.state).toBe('succeeded'); // the run itself stays

    const again = await vacuum(['--data-dir', c.dataDir, '--older-than', '0s', '--json']);
    expect(again.code, again.stderr).toBe(0);
    // pkg#4 and other#2 are their jobs' latest successes: never stripped, whatever the policy
    expect(JSON.parse(again.stdout)).toMatchObject({ runs: [{ job: 'other', number: 1 }], blobsDeleted: 1 });
  });

  it('refuses to guess a policy, and says what is missing', async () => {
    const r = await vacuum(['--data-dir', c.dataDir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('give --keep-latest N, --older-than DURATION or both');
    const bad = await vacuum(['--data-dir', c.dataDir, '--older-than', 'a month']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--older-than must be a duration');
    const job = await vacuum(['--data-dir', c.dataDir, '--keep-latest', '1', '--job', 'nope']);
    expect(job.code).toBe(3);
    expect(job.stderr).toContain('no job named "nope"');
    const dir = await vacuum(['--data-dir', join(c.dir, 'typo'), '--keep-latest', '1']);
    expect(dir.code).toBe(3);
    expect(existsSync(join(c.dir, 'typo'))).toBe(false);
  });
});
