import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LogFields, Logger } from '../log.ts';
import type { Db } from '../store/db.ts';
import type { BlobStore } from './blob-store.ts';
import { LocalBlobStore } from './local-blobs.ts';
import { formatVacuumReport, startRetention, vacuum, type RetentionPolicy } from './retention.ts';
import { S3BlobStore } from './s3-blobs.ts';
import { startS3rver } from '../test-support/s3rver.ts';
import { removeTempDb, tempDb } from '../test-support/temp-db.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('vacuum', () => {
  let dir: string;
  let db: Db;
  let blobs: BlobStore;
  // blobs get the real time as mtime: two hours on they are past the default 1 h grace
  let now: number;
  let n = 0;

  const job = (name: string): number =>
    Number(
      db
        .prepare(
          `INSERT INTO jobs (name, platforms, script, timeout_s, kill_grace_s, retries, retry_backoff_s, concurrency, created_at, updated_at)
           VALUES (?, '["p","q"]', 'true', 60, 1, 0, 1, 1, 0, 0)`,
        )
        .run(name).lastInsertRowid,
    );
  const run = (jobId: number, number: number, opts: { state?: string; ago: number; platform?: string }): string => {
    const id = randomUUID();
    db.prepare(
      `INSERT INTO runs (id, job_id, number, platform, script, params, trigger, state, max_attempts, retry_backoff_s,
                         timeout_s, kill_grace_s, queued_at, finished_at)
       VALUES (?, ?, ?, ?, 'true', '{}', 'manual', ?, 1, 1, 60, 1, 0, ?)`,
    ).run(
      id,
      jobId,
      number,
      opts.platform ?? 'p',
      opts.state ?? 'succeeded',
      opts.state === 'running' ? null : now - opts.ago,
    );
    return id;
  };
  /** A blob in the store, without a row. */
  const blob = async (content: string): Promise<string> => {
    const sha = createHash('sha256').update(content).digest('hex');
    const file = join(dir, `staged-${++n}`);
    writeFileSync(file, content);
    await blobs.put(sha, file, content.length);
    return sha;
  };
  /** A file of `runId`: its blob and its row. */
  const artifact = async (runId: string, path: string, content: string): Promise<string> => {
    const sha = await blob(content);
    db.prepare('INSERT INTO artifacts (run_id, path, size, sha256) VALUES (?, ?, ?, ?)').run(
      runId,
      path,
      content.length,
      sha,
    );
    return sha;
  };
  const files = (runId: string) =>
    (db.prepare('SELECT COUNT(*) AS n FROM artifacts WHERE run_id = ?').get(runId) as { n: number }).n;
  const stored = async () => {
    const out = new Set<string>();
    for await (const b of blobs.list()) out.add(b.sha256);
    return out;
  };
  const go = (policy: RetentionPolicy, at = now) => vacuum({ db, blobs, now: at }, policy);

  beforeEach(() => {
    ({ dir, db } = tempDb('builder-retention-'));
    blobs = new LocalBlobStore(join(dir, 'blobs'));
    now = Date.now() + 2 * HOUR;
  });
  afterEach(() => {
    removeTempDb(dir, db);
  });

  it('keeps the newest N runs with artifacts per job and platform', async () => {
    const a = job('a');
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) {
      ids.push(run(a, i, { ago: (10 - i) * DAY }));
      await artifact(ids[i - 1]!, 'out.bin', `a${i}`);
    }
    // another platform counts on its own: its two runs stay
    const q1 = run(a, 6, { ago: 30 * DAY, platform: 'q' });
    const q2 = run(a, 7, { ago: 20 * DAY, platform: 'q' });
    await artifact(q1, 'out.bin', 'q1');
    await artifact(q2, 'out.bin', 'q2');
    // a run without artifacts takes no place among the N
    run(a, 8, { ago: 1 * HOUR, state: 'failed' });

    const report = await go({ keepLatest: 2 });
    expect(report.runs).toEqual([
      { job: 'a', number: 1, platform: 'p', files: 1, bytes: 2 },
      { job: 'a', number: 2, platform: 'p', files: 1, bytes: 2 },
      { job: 'a', number: 3, platform: 'p', files: 1, bytes: 2 },
    ]);
    expect(report).toMatchObject({ files: 3, bytes: 6, blobsDeleted: 3, bytesFreed: 6 });
    expect(ids.map(files)).toEqual([0, 0, 0, 1, 1]);
    expect([files(q1), files(q2)]).toEqual([1, 1]);
    expect((await stored()).size).toBe(4);
    // the runs themselves stay
    expect(db.prepare('SELECT COUNT(*) AS n FROM runs').get()).toEqual({ n: 8 });
    expect(formatVacuumReport(report, { dryRun: false, store: blobs.description })).toBe(
      'a#1 p: 1 file, 2 B\na#2 p: 1 file, 2 B\na#3 p: 1 file, 2 B\n' +
        `removed the artifacts of 3 runs (3 files, 6 B); deleted 3 blobs (6 B) from ${blobs.description}\n`,
    );
  });

  it('strips runs that finished before the cut-off, and never the latest successful one', async () => {
    const a = job('a');
    const ancient = run(a, 1, { ago: 100 * DAY }); // latest success: kept whatever its age
    const old = run(a, 2, { ago: 40 * DAY, state: 'failed' });
    const recent = run(a, 3, { ago: 10 * DAY, state: 'failed' });
    const running = run(a, 4, { ago: 0, state: 'running' });
    for (const id of [ancient, old, recent, running]) await artifact(id, 'log.txt', id);

    const report = await go({ olderThanMs: 30 * DAY });
    expect(report.runs.map((r) => r.number)).toEqual([2]);
    expect([ancient, old, recent, running].map(files)).toEqual([1, 0, 1, 1]);

    // keep-latest 0 keeps nothing but the latest success
    const again = await go({ keepLatest: 0 });
    expect(again.runs.map((r) => r.number)).toEqual([3]);
    expect(files(ancient)).toBe(1);
  });

  it('strips a run when either rule selects it', async () => {
    const a = job('a');
    const r1 = run(a, 1, { ago: 50 * DAY, state: 'failed' });
    const r2 = run(a, 2, { ago: 3 * DAY, state: 'failed' });
    const r3 = run(a, 3, { ago: 2 * DAY, state: 'failed' });
    const r4 = run(a, 4, { ago: 1 * DAY });
    for (const id of [r1, r2, r3, r4]) await artifact(id, 'f', id);
    // r1: too old (but among the 3 newest would keep it); r2: not old, but 4th newest
    const report = await go({ keepLatest: 3, olderThanMs: 30 * DAY });
    expect(report.runs.map((r) => r.number)).toEqual([1]);
    const tighter = await go({ keepLatest: 2, olderThanMs: 30 * DAY });
    expect(tighter.runs.map((r) => r.number)).toEqual([2]);
  });

  it('limits stripping to one job, and still collects unreferenced blobs of any job', async () => {
    const a = job('a');
    const b = job('b');
    const a1 = run(a, 1, { ago: 40 * DAY, state: 'failed' });
    const b1 = run(b, 1, { ago: 40 * DAY, state: 'failed' });
    await artifact(a1, 'f', 'a1');
    const b1sha = await artifact(b1, 'f', 'b1');
    const orphan = await blob('from a broken transfer');
    const report = await go({ olderThanMs: DAY, job: 'a' });
    expect(report.runs.map((r) => `${r.job}#${r.number}`)).toEqual(['a#1']);
    expect([files(a1), files(b1)]).toEqual([0, 1]);
    // the orphan has no row; its size comes from the store's listing
    expect(report).toMatchObject({ blobsDeleted: 2, bytesFreed: 2 + 'from a broken transfer'.length });
    const left = await stored();
    expect(left.has(b1sha)).toBe(true);
    expect(left.has(orphan)).toBe(false);
  });

  it('keeps a blob that a kept run still refers to', async () => {
    const a = job('a');
    const old = run(a, 1, { ago: 40 * DAY });
    const kept = run(a, 2, { ago: DAY });
    const shared = await artifact(old, 'lib.so', 'same bytes in both runs');
    await artifact(kept, 'lib.so', 'same bytes in both runs');
    const unique = await artifact(old, 'only-old.txt', 'only in the old run');
    const report = await go({ keepLatest: 1 });
    expect(report.runs.map((r) => r.number)).toEqual([1]);
    expect(report.blobsDeleted).toBe(1);
    expect(report.bytesFreed).toBe('only in the old run'.length);
    const left = await stored();
    expect(left.has(shared)).toBe(true);
    expect(left.has(unique)).toBe(false);
  });

  it('leaves an unreferenced blob younger than the grace period alone', async () => {
    const fresh = await blob('just stored, row not yet recorded');
    const realNow = Date.now();
    expect((await go({ keepLatest: 1 }, realNow)).blobsDeleted).toBe(0);
    expect((await go({ keepLatest: 1, blobGraceMs: 10 * HOUR })).blobsDeleted).toBe(0);
    expect((await stored()).has(fresh)).toBe(true);
    expect((await go({ keepLatest: 1 })).blobsDeleted).toBe(1);
    expect((await stored()).size).toBe(0);
  });

  it('changes nothing on a dry run, and reports what the real run then does', async () => {
    const a = job('a');
    const old = run(a, 1, { ago: 40 * DAY });
    const kept = run(a, 2, { ago: DAY });
    await artifact(old, 'x', 'old');
    await artifact(old, 'shared', 'shared');
    await artifact(kept, 'shared', 'shared');
    await blob('orphan');
    const before = await stored();
    const dry = await go({ keepLatest: 1, dryRun: true });
    expect(dry).toMatchObject({ runs: [{ job: 'a', number: 1 }], files: 2, blobsDeleted: 2 });
    expect(files(old)).toBe(2);
    expect(await stored()).toEqual(before);
    expect(formatVacuumReport(dry, { dryRun: true, store: 'S' })).toContain(
      'dry run: would remove the artifacts of 1 run (2 files, 9 B); would delete 2 blobs',
    );
    expect(await go({ keepLatest: 1 })).toEqual(dry);
    expect(files(old)).toBe(0);
  });

  it('applies a configured policy at start and logs the counts', async () => {
    const a = job('a');
    await artifact(run(a, 1, { ago: 40 * DAY, state: 'failed' }), 'f', 'one');
    await artifact(run(a, 2, { ago: DAY }), 'f', 'two');
    const lines: [string, LogFields | undefined][] = [];
    const logger: Logger = {
      info: (e, f) => lines.push([e, f]),
      warn: (e, f) => lines.push([e, f]),
      error: (e, f) => lines.push([e, f]),
      debug() {},
      child: () => logger,
    };
    const retention = startRetention({ db, blobs, clock: { now: () => now }, logger }, { keepLatest: 1 });
    await vi.waitFor(() => expect(lines).toHaveLength(1));
    await retention.stop();
    expect(lines).toEqual([
      [
        'artifacts.vacuum',
        expect.objectContaining({ keepLatest: 1, runs: 1, files: 1, bytes: 3, blobsDeleted: 1, bytesFreed: 3 }),
      ],
    ]);
  });

  it('works the same against an S3 bucket', async () => {
    const fixture = await startS3rver(dir);
    const s3 = new S3BlobStore({
      bucket: 'builder',
      prefix: 'ci',
      endpoint: fixture.endpoint,
      region: 'us-east-1',
    });
    blobs = s3;
    try {
      const a = job('a');
      const old = run(a, 1, { ago: 40 * DAY });
      const kept = run(a, 2, { ago: DAY });
      const shared = await artifact(old, 'shared', 'shared');
      await artifact(kept, 'shared', 'shared');
      await artifact(old, 'x', 'old only');
      const orphan = await blob('orphan');
      const report = await go({ olderThanMs: 30 * DAY });
      expect(report).toMatchObject({ runs: [{ job: 'a', number: 1, files: 2 }], blobsDeleted: 2 });
      expect([...(await stored())]).toEqual([shared]);
      expect(await s3.has(orphan)).toBe(false);
    } finally {
      s3.destroy();
      await fixture.close();
    }
  });
});
