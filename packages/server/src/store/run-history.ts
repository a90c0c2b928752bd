import type { RunState } from '@builder/protocol';
import type { Db } from './db.ts';
import type { RunRow } from './rows.ts';

/** What finished runs say about their jobs: for alerts (a recovery?) and metrics (a stale job?). */
export class RunHistory {
  private readonly previousStmt;
  private readonly lastSuccessStmt;

  constructor(db: Db) {
    this.previousStmt = db.prepare<[number, string, string, number, number, number], { state: RunState }>(
      `SELECT state FROM runs WHERE job_id = ? AND platform = ? AND id != ? AND finished_at IS NOT NULL
         AND (finished_at < ? OR (finished_at = ? AND number < ?))
         AND state IN ('succeeded', 'failed', 'timeout', 'error', 'lost')
       ORDER BY finished_at DESC, number DESC LIMIT 1`,
    );
    this.lastSuccessStmt = db.prepare<[], { job: string; platform: string; t: number }>(
      `SELECT jobs.name AS job, runs.platform AS platform, MAX(runs.finished_at) AS t
       FROM runs JOIN jobs ON jobs.id = runs.job_id
       WHERE runs.state = 'succeeded' AND jobs.deleted_at IS NULL GROUP BY jobs.id, runs.platform`,
    );
  }

  /**
   * How the run of the same job and platform that finished before `run` (at `finishedAt`) ended;
   * cancelled runs say nothing either way, so they are skipped. Undefined when there is none.
   */
  previousOutcome(run: RunRow, finishedAt: number): RunState | undefined {
    return this.previousStmt.get(run.jobId, run.platform, run.id, finishedAt, finishedAt, run.number)?.state;
  }

  /** When the newest succeeded run of each scheduled job finished, per platform. */
  lastSuccessByJob(): { job: string; platform: string; t: number }[] {
    return this.lastSuccessStmt.all();
  }
}
