import type { Db } from './db.ts';
import { runFromRaw, type RawRun, type RunRow } from './rows.ts';
import { JOB_PLATFORMS } from './site-queries.ts';

/** The run before and after `number` of the same job on the same platform (null at either end). */
export function neighbours(
  db: Db,
  jobId: number,
  platform: string,
  number: number,
): { previous: number | null; next: number | null } {
  const one = (sql: string) =>
    (db.prepare(sql).get(jobId, platform, number) as { n: number | null } | undefined)?.n ?? null;
  return {
    previous: one('SELECT MAX(number) AS n FROM runs WHERE job_id = ? AND platform = ? AND number < ?'),
    next: one('SELECT MIN(number) AS n FROM runs WHERE job_id = ? AND platform = ? AND number > ?'),
  };
}

/** The job's newest `limit` runs, oldest first (the order a chart reads). */
export function lastRuns(db: Db, jobId: number, limit: number): RunRow[] {
  const rows = db
    .prepare(
      `SELECT runs.*, jobs.name AS job FROM runs JOIN jobs ON jobs.id = runs.job_id
       WHERE runs.job_id = ? ORDER BY runs.number DESC LIMIT ?`,
    )
    .all(jobId, limit) as RawRun[];
  return rows.map(runFromRaw).reverse();
}

/** The newest succeeded run of the job on each platform (what `/job/J/latest/PATH?platform=P` serves from). */
export function latestSucceededPerPlatform(db: Db, jobId: number): RunRow[] {
  // a platform without a success gives NULL, which no id equals
  const rows = db
    .prepare(
      `${JOB_PLATFORMS} SELECT runs.*, jobs.name AS job FROM runs JOIN jobs ON jobs.id = runs.job_id
       WHERE runs.id IN (
         SELECT (SELECT r2.id FROM runs r2 WHERE r2.job_id = @job AND r2.platform = p AND r2.state = 'succeeded'
                 AND r2.finished_at IS NOT NULL ORDER BY r2.finished_at DESC LIMIT 1)
         FROM platforms WHERE p IS NOT NULL)
       ORDER BY runs.platform`,
    )
    .all({ job: jobId }) as RawRun[];
  return rows.map(runFromRaw);
}
