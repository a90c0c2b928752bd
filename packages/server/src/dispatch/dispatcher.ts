import type { Assignment } from '@builder/protocol';
import { runView } from '../api/views.ts';
import type { Context } from '../context.ts';
import { attemptSecret } from '../runs/attempt-secret.ts';
import type { RunRow } from '../store/rows.ts';
import { freeSlots, type ConnectedWorker } from './registry.ts';

/**
 * Push dispatch: called whenever a run is queued, a slot frees, a worker connects or a backoff
 * ends. Assigns queued runs to the worker with the most free slots; the `assign` message leaves
 * only after the assignment is committed.
 */
export class Dispatcher {
  private backoffTimer: NodeJS.Timeout | undefined;
  private readonly nextBackoff;
  private stopped = false;

  constructor(
    private readonly ctx: Context,
    private readonly systemLine: (runId: string, text: string) => void,
  ) {
    this.nextBackoff = ctx.db.prepare<[number], { t: number | null }>(
      `SELECT MIN(not_before) AS t FROM runs INDEXED BY runs_backoff WHERE state = 'queued' AND not_before IS NOT NULL AND not_before > ?`,
    );
  }

  dispatch(): void {
    const { ctx } = this;
    // an assignment is a write: while the disk is full runs wait, and the outage's end dispatches
    if (ctx.storage.refusing) return;
    const now = ctx.clock.now();
    for (const platform of ctx.registry.platforms()) {
      if (ctx.platforms.isDropped(platform)) continue;
      const workers = ctx.registry.forPlatform(platform);
      for (;;) {
        const worker = mostFree(workers);
        if (!worker) break;
        const run = ctx.runs.nextQueued(platform, now);
        if (!run) break;
        ctx.commit.write(() => this.assign(run, worker, now));
      }
    }
    this.armBackoff(now);
  }

  stop(): void {
    this.stopped = true;
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
  }

  private assign(run: RunRow, worker: ConnectedWorker, now: number): void {
    const { ctx } = this;
    ctx.runs.assign(run, worker.name, now);
    ctx.active.set({
      id: run.id,
      jobId: run.jobId,
      platform: run.platform,
      attempt: run.attempt,
      worker: worker.name,
      nextSeq: 1,
      leaseUntil: now + ctx.leaseMs,
      cancelRequested: run.cancelReason !== null,
    });
    worker.runs.add(run.id);
    if (run.attempt > 1) {
      this.systemLine(run.id, `attempt ${run.attempt} of ${run.maxAttempts} on worker ${worker.name}`);
    }
    const job = ctx.jobs.getById(run.jobId);
    const secrets = job && job.secrets.length > 0 ? ctx.secrets.resolve(job.name, job.secrets) : undefined;
    const assignment: Assignment = {
      runId: run.id,
      attempt: run.attempt,
      job: run.job,
      number: run.number,
      platform: run.platform,
      script: run.script,
      params: run.params,
      timeoutSec: run.timeoutSec,
      killGraceSec: run.killGraceSec,
      attemptSecret: attemptSecret(ctx.attemptKey, run.id, run.attempt, worker.name),
      secrets: secrets?.values ?? {},
      missingSecrets: secrets?.missing ?? [],
    };
    ctx.logger.debug('run.assigned', {
      run: run.id,
      job: run.job,
      number: run.number,
      worker: worker.name,
      attempt: run.attempt,
    });
    ctx.commit.then(() => {
      worker.send({ type: 'assign', run: assignment });
      if (!ctx.observers.watching(run.id)) return;
      const fresh = ctx.runs.get(run.id);
      if (fresh) ctx.observers.state(runView(ctx, fresh), false);
    });
  }

  private armBackoff(now: number): void {
    if (this.stopped) return;
    const t = this.nextBackoff.get(now)?.t ?? null;
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    if (t === null) return;
    this.backoffTimer = setTimeout(() => this.dispatch(), Math.max(1, t - now + 1));
    this.backoffTimer.unref();
  }
}

function mostFree(workers: ConnectedWorker[]): ConnectedWorker | undefined {
  let best: ConnectedWorker | undefined;
  let bestFree = 0;
  for (const w of workers) {
    const free = freeSlots(w);
    if (free > bestFree) ((best = w), (bestFree = free));
  }
  return best;
}
