import type { RunState } from '@builder/protocol';
import type { Db } from './db.ts';
import { runFromRaw, type RawRun, type RunRow } from './rows.ts';

/** Read-only queries of the public website, over the same tables as RunStore. */
const SELECT = 'SELECT runs.*, jobs.name AS job FROM runs JOIN jobs ON jobs.id = runs.job_id';

export interface RunFilter {
  jobId: number;
  platform?: string;
  state?: RunState;
}

function where(filter: RunFilter): { sql: string; args: (string | number)[] } {
  const parts = ['runs.job_id = ?'];
  const args: (string | number)[] = [filter.jobId];
  if (filter.platform !== undefined) (parts.push('runs.platform = ?'), args.push(filter.platform));
  if (filter.state !== undefined) (parts.push('runs.state = ?'), args.push(filter.state));
  return { sql: parts.join(' AND '), args };
}

/** One page of a job's runs, newest first, and how many match in all. */
export function runsPage(db: Db, filter: RunFilter, limit: number, offset: number): { runs: RunRow[]; total: number } {
  const w = where(filter);
  const rows = db
    .prepare(`${SELECT} WHERE ${w.sql} ORDER BY runs.number DESC LIMIT ? OFFSET ?`)
    .all(...w.args, limit, offset) as RawRun[];
  const total = (db.prepare(`SELECT COUNT(*) AS n FROM runs WHERE ${w.sql}`).get(...w.args) as { n: number }).n;
  return { runs: rows.map(runFromRaw), total };
}

/**
 * `platforms(p)`: every platform job @job ever ran on, found by skipping from one to the next in
 * runs_by_job_platform (a few index lookups each) instead of reading every run of the job.
 */
export const JOB_PLATFORMS = `WITH RECURSIVE platforms(p) AS (
  SELECT (SELECT MIN(platform) FROM runs WHERE job_id = @job)
  UNION ALL
  SELECT (SELECT MIN(platform) FROM runs WHERE job_id = @job AND platform > p) FROM platforms WHERE p IS NOT NULL)`;

/** The newest run of the job on each platform it ever ran on, by platform name. */
export function latestPerPlatform(db: Db, jobId: number): RunRow[] {
  return (
    db
      .prepare(
        `${JOB_PLATFORMS} ${SELECT} WHERE runs.id IN
         (SELECT (SELECT id FROM runs r WHERE r.job_id = @job AND r.platform = p ORDER BY r.number DESC LIMIT 1)
          FROM platforms WHERE p IS NOT NULL)
         ORDER BY runs.platform`,
      )
      .all({ job: jobId }) as RawRun[]
  ).map(runFromRaw);
}

/** Runs that ended in one of `states`, most recently finished first, of one job or all. */
export function recentFinished(db: Db, states: readonly RunState[], limit: number, jobId?: number): RunRow[] {
  const marks = states.map(() => '?').join(', ');
  const jobSql = jobId === undefined ? '' : ' AND runs.job_id = ?';
  const args: (string | number)[] = [...states, ...(jobId === undefined ? [] : [jobId]), limit];
  return (
    db
      .prepare(
        `${SELECT} WHERE runs.state IN (${marks}) AND runs.finished_at IS NOT NULL${jobSql}
         ORDER BY runs.finished_at DESC LIMIT ?`,
      )
      .all(...args) as RawRun[]
  ).map(runFromRaw);
}

/**
 * The run a status badge shows: the newest one that is running or ended with a verdict on the
 * build. Queued runs have none yet, and a cancelled run says nothing about the code.
 */
export function badgeRun(db: Db, jobId: number, platform?: string): RunRow | undefined {
  const p = platform ?? null;
  const row = db
    .prepare(
      `${SELECT} WHERE runs.job_id = ? AND (? IS NULL OR runs.platform = ?) AND runs.state NOT IN ('queued', 'cancelled')
       ORDER BY runs.number DESC LIMIT 1`,
    )
    .get(jobId, p, p) as RawRun | undefined;
  return row ? runFromRaw(row) : undefined;
}
