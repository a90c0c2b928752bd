import { gunzipSync } from 'node:zlib';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDb } from '../packages/server/src/store/db.ts';
import { startS3rver, type S3Fixture } from '../packages/server/src/test-support/s3rver.ts';
import { Cluster, serverCommand, waitFor } from './harness.ts';

/** What a user gets over HTTP: status, type and the exact bytes. */
async function get(base: string, path: string): Promise<{ status: number; type: string | null; body: Buffer }> {
  const res = await fetch(`${base}${path}`);
  return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
}

const logsDir = (c: Cluster) => join(c.dataDir, 'logs');
const consoleFiles = (c: Cluster) => (existsSync(logsDir(c)) ? readdirSync(logsDir(c)).sort() : []);
const runId = async (c: Cluster, ref: string) => (await c.run(ref)).id;

/** The finished run's responses a backup must reproduce exactly. */
const FINISHED = [
  '/job/build/run/1/console.txt',
  '/job/build/run/1/console.txt?from=4097',
  '/job/build/run/1/console.txt?from=999999999',
  '/job/build/run/1',
  '/job/build/run/1?before=300000',
  '/job/build/run/1?after=100',
  '/job/build/run/1/artifacts/out/numbers.txt',
  '/job/build/run/1/artifacts/hello.txt',
  '/job/build/latest/hello.txt',
];

/**
 * Pages show times relative to now ("3 seconds ago") and the server's uptime: cut those out,
 * everything else must be the same bytes.
 */
const stable = (r: { status: number; type: string | null; body: Buffer }) =>
  r.type?.startsWith('text/html')
    ? { ...r, body: r.body.toString('utf8').replace(/<time[^>]*>[^<]*<\/time>|\b\d+ (?:ms|s|min|h|d)\b/g, 'T') }
    : { ...r, body: r.body.toString('base64') };

describe('backup and restore of a running server (local blobs, host worker)', () => {
  let c: Cluster;
  let restored: Cluster | undefined;
  let stopFile: string;
  const backups = mkdtempSync(join(tmpdir(), 'builder-backups-'));

  beforeAll(async () => {
    c = await Cluster.start();
    stopFile = join(c.dir, 'stop-printing');
    c.startWorker('w1', { capacity: 2 });
    await c.waitForWorkers('w1');
  });
  afterEach(async () => {
    await restored?.stop();
    restored = undefined;
  });
  afterAll(async () => {
    writeFileSync(stopFile, '');
    await c?.stop();
    rmSync(backups, { recursive: true, force: true });
  });

  it('copies a consistent state while a job prints; the restored server serves the same runs, consoles and artifacts', async () => {
    // a finished run with a console of several compression blocks, colours and artifacts
    await c.schedule(
      'build',
      [
        'for i in $(seq 1 30000); do printf "\\033[32mok\\033[0m step %d of 30000: compiled src/file%d.c\\n" $i $((i % 97)); done',
        'cd "$BUILDER_OUTPUT" && echo hello > hello.txt && mkdir out && seq 1 100000 > out/numbers.txt',
      ].join('\n'),
    );
    const done = await c.client(['execute', 'build', '--follow']);
    expect(done.code, done.stderr).toBe(0);
    const buildId = await runId(c, 'build/1');
    // compressed once finished, in the background
    await waitFor(() => consoleFiles(c).includes(`${buildId}.log.gz`), 'the finished console to be compressed');
    expect(consoleFiles(c)).not.toContain(`${buildId}.log`);

    // a run still printing while the backup is taken
    await c.schedule(
      'printer',
      `for i in $(seq 1 3000); do [ -e ${stopFile} ] && break; echo "line $i"; sleep 0.02; done`,
    );
    expect((await c.client(['execute', 'printer'])).code).toBe(0);
    await waitFor(
      async () => (await get(c.url, '/job/printer/run/1/console.txt')).body.length > 200,
      'the printer to print',
    );

    const before = await Promise.all(FINISHED.map((p) => get(c.url, p)));
    for (const [i, r] of before.entries()) expect(r.status, FINISHED[i]).toBe(200);
    const rawBefore = before[0]!.body;
    expect(rawBefore.toString()).toContain('step 30000 of 30000');

    const to = join(backups, 'nightly');
    const b = await serverCommand(['backup', '--data-dir', c.dataDir, '--to', to]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/database: 2 jobs, 2 runs/);
    expect(b.stdout).toMatch(/consoles: 2 files/);
    // the same file system here: hard links to the store's immutable blobs
    expect(b.stdout).toMatch(/artifacts: 2 blobs, .* \(0 from the previous backup, 2 linked, 0 copied\)/);
    // complete and in place: no temp dir left beside it, the manifest counts what is there
    expect(readdirSync(backups)).toEqual(['nightly']);
    const manifest = JSON.parse(readFileSync(join(to, 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({
      kind: 'builder-backup',
      database: { runs: 2, jobs: 2 },
      consoles: { files: 2 },
      blobs: { store: 'local', files: 2, missing: [], damaged: [] },
    });
    expect(Date.parse(manifest.createdAt)).toBeGreaterThan(Date.now() - 600_000);
    const printerId = await runId(c, 'printer/1');
    expect(readdirSync(join(to, 'logs')).sort()).toEqual([`${buildId}.log.gz`, `${printerId}.log`].sort());

    // still printing after the backup: the backup holds a prefix of it
    await waitFor(
      async () =>
        (await get(c.url, '/job/printer/run/1/console.txt')).body.length >
        readFileSync(join(to, 'logs', `${printerId}.log`)).length,
      'more output after the backup',
    );

    restored = new Cluster();
    rmSync(restored.dataDir, { recursive: true, force: true });
    const r = await serverCommand(['restore', '--from', to, '--data-dir', restored.dataDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 runs, 2 consoles, 2 artifact blobs/);
    // the running run's console ends exactly where the restored database says it does
    const copied = openDb(restored.dataDir);
    const row = copied.prepare('SELECT state, log_bytes FROM runs WHERE id = ?').get(printerId) as {
      state: string;
      log_bytes: number;
    };
    copied.close();
    expect(row.state).toBe('running');
    expect(row.log_bytes).toBeGreaterThan(200);
    expect(readFileSync(join(to, 'logs', `${printerId}.log`)).length).toBe(row.log_bytes);
    await restored.startServer();

    const after = await Promise.all(FINISHED.map((p) => get(restored!.url, p)));
    for (const [i, p] of FINISHED.entries()) expect(stable(after[i]!), p).toEqual(stable(before[i]!));
    // console.txt and artifacts exactly, byte for byte
    expect(after[0]!.body.equals(rawBefore)).toBe(true);
    expect(after[6]!.body.equals(before[6]!.body)).toBe(true);

    // the running run: its console as far as the copied database vouched for it, a prefix of the live one
    const live = (await get(c.url, '/job/printer/run/1/console.txt')).body;
    const copy = (await get(restored.url, '/job/printer/run/1/console.txt')).body;
    expect(copy.length).toBeGreaterThan(200);
    expect(copy.length).toBeLessThan(live.length);
    expect(live.subarray(0, copy.length).equals(copy)).toBe(true);
    expect(copy.toString()).toMatch(/line \d+\n$/);

    // the client sees the same: observe of the finished run prints the whole console
    const obs = await restored.client(['observe', 'build/1'], { token: c.tokens.read });
    expect(obs.code, obs.stderr).toBe(0);
    expect(obs.stdout).toContain(rawBefore.toString());

    // a second backup to the same DIR takes the blobs from the first
    const again = await serverCommand(['backup', '--data-dir', c.dataDir, '--to', to]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/2 from the previous backup, 0 linked, 0 copied/);
    expect(readdirSync(backups)).toEqual(['nightly']);
  });

  it('restore refuses a data dir that is not empty, and leaves it alone', async () => {
    const to = join(backups, 'refuse');
    expect((await serverCommand(['backup', '--data-dir', c.dataDir, '--to', to])).code).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'builder-restore-busy-'));
    try {
      writeFileSync(join(dir, 'notes.txt'), 'mine');
      const r = await serverCommand(['restore', '--from', to, '--data-dir', dir]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/--data-dir .* is not empty \(notes\.txt\): restore only into a new or empty data dir/);
      expect(readdirSync(dir)).toEqual(['notes.txt']);
      // and the existing server's own data dir, the likeliest mistake
      const own = await serverCommand(['restore', '--from', to, '--data-dir', c.dataDir]);
      expect(own.code).toBe(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('restore refuses what is not a backup, or a damaged one, and leaves nothing behind', async () => {
    const to = join(backups, 'damaged');
    const copied = await serverCommand(['backup', '--data-dir', c.dataDir, '--to', to, '--copy']);
    expect(copied.code, copied.stderr).toBe(0);
    expect(copied.stdout).toMatch(/0 linked, 2 copied/);
    const target = join(backups, 'target');
    const none = await serverCommand(['restore', '--from', c.dir, '--data-dir', target]);
    expect(none.code).toBe(4);
    expect(none.stderr).toMatch(/is not a builder backup: it has no manifest\.json/);
    // one blob bit-flipped in the backup
    const prefix = readdirSync(join(to, 'blobs'))[0]!;
    const blob = join(to, 'blobs', prefix, readdirSync(join(to, 'blobs', prefix))[0]!);
    expect(statSync(blob).nlink).toBe(1); // a copy of its own: damage here is not the server's
    const bytes = readFileSync(blob);
    bytes[0] = bytes[0]! ^ 1;
    writeFileSync(blob, bytes);
    const bad = await serverCommand(['restore', '--from', to, '--data-dir', target]);
    expect(bad.code).toBe(4);
    expect(bad.stderr).toMatch(/blob [0-9a-f]{64} in the backup is damaged/);
    expect(readdirSync(target)).toEqual([]);
    // the next backup to the same DIR does not trust the damaged copy: it takes the store's again
    const next = await serverCommand(['backup', '--data-dir', c.dataDir, '--to', to, '--copy']);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stdout).toMatch(/1 from the previous backup, 0 linked, 1 copied/);
    const good = await serverCommand(['restore', '--from', to, '--data-dir', target]);
    expect(good.code, good.stderr).toBe(0);
  });

  it('a backup refuses a target that holds something else, and a dir without a database', async () => {
    const other = join(backups, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'precious'), 'x');
    const r = await serverCommand(['backup', '--data-dir', c.dataDir, '--to', other]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/holds files but no backup manifest/);
    expect(readdirSync(other)).toEqual(['precious']);
    const empty = await serverCommand(['backup', '--data-dir', join(backups, 'nothing'), '--to', join(backups, 'x')]);
    expect(empty.code).toBe(3);
    expect(empty.stderr).toMatch(/no builder database in/);
  });

  it('a console left raw by an older version is served the same, then compressed at start', async () => {
    const id = await runId(c, 'build/1');
    const paths = FINISHED.slice(0, 6);
    const compressed = await Promise.all(paths.map((p) => get(c.url, p)));
    expect(await c.killServer('SIGTERM')).toBe(0);
    // as an older builder left it: raw only
    const gz = join(logsDir(c), `${id}.log.gz`);
    writeFileSync(join(logsDir(c), `${id}.log`), gunzipSync(readFileSync(gz)));
    unlinkSync(gz);
    // and a crash mid-compression of it: a temp file beside it
    writeFileSync(`${gz}.tmp`, 'half');
    await c.startServer();
    const raw = await Promise.all(paths.map((p) => get(c.url, p)));
    for (const [i, p] of paths.entries()) expect(stable(raw[i]!), p).toEqual(stable(compressed[i]!));
    await waitFor(
      () => consoleFiles(c).includes(`${id}.log.gz`) && !consoleFiles(c).includes(`${id}.log`),
      'compression at start',
    );
    expect(consoleFiles(c)).not.toContain(`${id}.log.gz.tmp`);
    const again = await Promise.all(paths.map((p) => get(c.url, p)));
    for (const [i, p] of paths.entries()) expect(stable(again[i]!), p).toEqual(stable(compressed[i]!));
    // the follow of a finished run ends with the whole console
    const follow = await get(c.url, '/job/build/run/1/console.txt?follow=1');
    expect(follow.body.equals(compressed[0]!.body)).toBe(true);
  });
});

describe('backup with artifacts in S3 (s3rver on loopback)', () => {
  let s3: S3Fixture;
  let c: Cluster;
  const backups = mkdtempSync(join(tmpdir(), 'builder-backups-s3-'));
  const store = () => ['--artifacts', 's3://builder/runs', '--s3-endpoint', s3.endpoint];

  beforeAll(async () => {
    s3 = await startS3rver(mkdtempSync(join(tmpdir(), 'builder-s3-backup-')));
    c = await Cluster.start(store());
    c.startWorker('w1');
    await c.waitForWorkers('w1');
  });
  afterAll(async () => {
    await c?.stop();
    await s3?.close();
    rmSync(backups, { recursive: true, force: true });
  });

  it('says the blobs stay in the bucket and backs up the rest; the restored server serves them from it', async () => {
    await c.schedule('pkg', 'echo building; cd "$BUILDER_OUTPUT" && echo artifact > a.txt');
    expect((await c.client(['execute', 'pkg', '--follow'])).code).toBe(0);
    const to = join(backups, 'b');
    const b = await serverCommand(['backup', '--data-dir', c.dataDir, '--to', to, ...store()]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toContain('artifacts: not copied: the blobs stay in s3://builder/runs');
    expect(existsSync(join(to, 'blobs'))).toBe(false);
    expect(JSON.parse(readFileSync(join(to, 'manifest.json'), 'utf8')).blobs).toEqual({
      store: 's3',
      location: 's3://builder/runs',
    });

    const restored = new Cluster(store());
    try {
      rmSync(restored.dataDir, { recursive: true, force: true });
      const r = await serverCommand(['restore', '--from', to, '--data-dir', restored.dataDir]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(
        'they stay in s3://builder/runs: start builder-server with --artifacts s3://builder/runs',
      );
      await restored.startServer();
      for (const p of ['/job/pkg/run/1/console.txt', '/job/pkg/run/1/artifacts/a.txt']) {
        const [x, y] = [await get(c.url, p), await get(restored.url, p)];
        expect(y.status, p).toBe(200);
        expect(y.body.equals(x.body), p).toBe(true);
      }
    } finally {
      await restored.stop();
    }
  });
});
