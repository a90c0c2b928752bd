import type { Db } from './db.ts';
import { runFromRaw, type RawRun, type RunRow } from './rows.ts';

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
