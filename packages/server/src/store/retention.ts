import type { RunState } from '@builder/protocol';
import type { Db } from './db.ts';

/** A finished run that has artifacts: what a retention policy chooses from. */
export interface RunWithArtifacts {
  id: string;
  jobId: number;
  job: string;
  number: number;
  platform: string;
  state: RunState;
  finishedAt: number;
  /** Its artifact rows and their total size. */
  files: number;
  bytes: number;
}

/** Finished runs with artifacts (of one job, or all), newest first within each job and platform. */
export function finishedRunsWithArtifacts(db: Db, job: string | null): RunWithArtifacts[] {
  return db
    .prepare<[string | null, string | null], RunWithArtifacts>(
      `SELECT r.id, r.job_id AS jobId, j.name AS job, r.number, r.platform, r.state, r.finished_at AS finishedAt,
              COUNT(*) AS files, TOTAL(a.size) AS bytes
       FROM runs r JOIN jobs j ON j.id = r.job_id JOIN artifacts a ON a.run_id = r.id
       WHERE r.finished_at IS NOT NULL AND (? IS NULL OR j.name = ?)
       GROUP BY r.id
       ORDER BY r.job_id, r.platform, r.finished_at DESC, r.number DESC`,
    )
    .all(job, job);
}

/** The newest successful run of each job on each platform, with or without artifacts. */
export function latestSucceededRunIds(db: Db): Set<string> {
  const rows = db
    .prepare<[], { id: string }>(
      `SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY job_id, platform ORDER BY finished_at DESC, number DESC) AS n
                       FROM runs WHERE state = 'succeeded' AND finished_at IS NOT NULL)
       WHERE n = 1`,
    )
    .all();
  return new Set(rows.map((r) => r.id));
}

/** Deletes a run's artifact rows (the blobs stay until nothing refers to them). */
export function artifactRowDeleter(db: Db): (runId: string) => void {
  const del = db.prepare<[string]>('DELETE FROM artifacts WHERE run_id = ?');
  return (runId) => void del.run(runId);
}

/** Whether any artifact row outside the runs `exceptRuns`, or any run's input, refers to a blob. */
export function blobReferenceChecker(db: Db): (sha256: string, exceptRuns: readonly string[]) => boolean {
  const referenced = db.prepare<[string, string, string], { n: number }>(
    `SELECT EXISTS (SELECT 1 FROM artifacts WHERE sha256 = ? AND run_id NOT IN (SELECT value FROM json_each(?)))
         OR EXISTS (SELECT 1 FROM run_inputs WHERE sha256 = ?) AS n`,
  );
  return (sha256, exceptRuns) => referenced.get(sha256, JSON.stringify(exceptRuns), sha256)?.n === 1;
}

/** A deleted blob is no longer there for `execute --input` to refer to: it must be sent again. */
export function uploadForgetter(db: Db): (sha256: string) => void {
  const del = db.prepare<[string]>('DELETE FROM input_uploads WHERE sha256 = ?');
  return (sha256) => void del.run(sha256);
}
