import type { SiteDeps } from '../deps.ts';
import type { JobRow } from '../../store/rows.ts';
import { runUsages } from '../../store/run-reports.ts';
import { lastRuns } from '../../store/site-history.ts';
import type { ChartRun } from '../chart.ts';
import { queueWait, resultText, runDuration } from '../format.ts';

/** The job's last `limit` runs as the charts draw them, oldest first. */
export function chartRuns(ctx: SiteDeps, job: JobRow, limit: number): ChartRun[] {
  const runs = lastRuns(ctx.db, job.id, limit);
  const usages = runUsages(
    ctx.db,
    runs.map((r) => r.id),
  );
  const now = ctx.clock.now();
  return runs.map((r) => ({
    number: r.number,
    platform: r.platform,
    state: r.state,
    result: resultText(r),
    durationMs: runDuration(r, now),
    queueWaitMs: queueWait(r, now),
    usage: usages.get(r.id) ?? null,
  }));
}
