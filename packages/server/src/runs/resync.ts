import type { Clock } from '../clock.ts';
import type { LogStore } from '../console/log-store.ts';
import type { Registry } from '../workers/registry.ts';
import type { RunStore } from '../store/runs.ts';
import type { ActiveRuns } from './active.ts';

/** What putting memory back to the database touches. */
export interface ResyncDeps {
  runs: Pick<RunStore, 'active' | 'get'>;
  active: ActiveRuns;
  registry: Registry;
  logs: Pick<LogStore, 'truncateTo' | 'openRuns'>;
  clock: Clock;
  leaseMs: number;
}

/**
 * Make what the server holds in memory about runs agree with the database again: the active runs
 * (attempt, worker, next expected console seq), which runs each connected worker holds, and the
 * length of every open console file.
 *
 * Used at start (after a crash) and after a group-commit batch was rolled back for lack of space:
 * the handlers of that batch had already bumped nextSeq, appended to console files, assigned runs
 * and forgotten finished ones. Putting all of that back to the durable state is what lets the
 * worker's resend be accepted later: a chunk whose ack was never sent is expected again (nextSeq),
 * lands at the durable end of the file (nothing doubled), and a `finished` that was not
 * acknowledged finds its run still active.
 */
export function resyncRuns(ctx: ResyncDeps): void {
  const now = ctx.clock.now();
  const rows = ctx.runs.active();
  const ids = new Set(rows.map((r) => r.id));
  // assigned in a batch that was undone: the worker never got the assignment
  for (const a of ctx.active.all()) if (!ids.has(a.id)) ctx.active.delete(a.id);
  for (const run of rows) {
    const before = ctx.active.get(run.id);
    ctx.active.set({
      id: run.id,
      jobId: run.jobId,
      platform: run.platform,
      attempt: run.attempt,
      worker: run.worker ?? '',
      nextSeq: run.logSeq + 1,
      // a run that was only in memory gets a fresh lease, like after a restart
      leaseUntil: before?.leaseUntil ?? now + ctx.leaseMs,
      cancelRequested: run.cancelReason !== null,
      // the secret mask starts again from the durable carry (made anew on the next output)
      carry: run.logCarry,
    });
  }
  for (const w of ctx.registry.all()) w.runs.clear();
  for (const a of ctx.active.all()) ctx.registry.get(a.worker)?.runs.add(a.id);
  // appended beyond what the database vouches for: cut, so a resend lands at the durable end
  for (const run of rows) ctx.logs.truncateTo(run.id, run.logBytes);
  for (const runId of ctx.logs.openRuns()) {
    if (!ids.has(runId)) ctx.logs.truncateTo(runId, ctx.runs.get(runId)?.logBytes ?? 0);
  }
}

/**
 * After a storage outage: ask every connected worker, for each run it holds, to send again from
 * the first seq the server does not have, then its result. While refusing, the server took none
 * of its output and answered none of its `finished`, so this is what gets them flowing again;
 * chunks it already has are acknowledged again and not appended twice. A worker that is not
 * connected (its hello was refused meanwhile) resends on its own when it is re-attached.
 *
 * Every active run also gets a fresh lease, as after a restart: refused hellos and ignored
 * messages were no chance to show signs of life.
 */
export function resumeRuns(ctx: Pick<ResyncDeps, 'active' | 'registry' | 'clock' | 'leaseMs'>): void {
  const until = ctx.clock.now() + ctx.leaseMs;
  for (const a of ctx.active.all()) {
    a.leaseUntil = Math.max(a.leaseUntil, until);
    ctx.registry.get(a.worker)?.send({ type: 'resend', runId: a.id, attempt: a.attempt, fromSeq: a.nextSeq });
  }
}
