import type { JobView, RunView, WorkerView } from '@builder/protocol';
import type { Clock } from '../clock.ts';
import { freeSlots, type ConnectedWorker, type Registry } from '../workers/registry.ts';
import type { InputStore } from '../store/inputs.ts';
import type { JobStore } from '../store/jobs.ts';
import type { PlatformStore } from '../store/platforms.ts';
import type { JobRow, RunRow } from '../store/rows.ts';
import type { RunStore } from '../store/runs.ts';

/** What a run's view reads to say why it waits. */
export interface ViewDeps {
  clock: Clock;
  platforms: Pick<PlatformStore, 'isDropped'>;
  registry: Pick<Registry, 'forPlatform'>;
  jobs: Pick<JobStore, 'getById'>;
  runs: Pick<RunStore, 'activeCount' | 'get'>;
  /** Absent: views list no inputs. */
  inputs?: Pick<InputStore, 'forRun'>;
}

export function runView(ctx: ViewDeps, run: RunRow, opts: { script?: boolean } = {}): RunView {
  return {
    id: run.id,
    job: run.job,
    number: run.number,
    platform: run.platform,
    state: run.state,
    attempt: run.attempt,
    maxAttempts: run.maxAttempts,
    params: run.params,
    trigger: run.trigger,
    worker: run.worker,
    queuedAt: run.queuedAt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    notBefore: run.notBefore,
    result: run.result,
    waiting: run.state === 'queued' ? whyWaiting(ctx, run) : null,
    cancelReason: run.cancelReason,
    ...(opts.script ? { script: run.script, ...(run.prepare !== null && { prepare: run.prepare }) } : {}),
    ref: run.ref,
    commit: run.commit,
    inputs: ctx.inputs?.forRun(run.id) ?? [],
    after: afterOf(ctx, run),
    rebuildOf: run.rebuildOf,
  };
}

/** The run whose success queued this one (`after:`), as JOB and number. */
function afterOf(ctx: ViewDeps, run: RunRow): { job: string; number: number } | null {
  if (run.afterRun === null) return null;
  const up = ctx.runs.get(run.afterRun);
  return up ? { job: up.job, number: up.number } : null;
}

/** Why a queued run is not running, in words a user can act on. */
export function whyWaiting(ctx: ViewDeps, run: RunRow): string {
  const now = ctx.clock.now();
  if (ctx.platforms.isDropped(run.platform)) {
    return `platform ${run.platform} is dropped (builder-client undrop-platform ${run.platform})`;
  }
  if (run.notBefore !== null && run.notBefore > now) {
    return `retry backoff: attempt ${run.attempt} starts after ${new Date(run.notBefore).toISOString()}`;
  }
  const workers = ctx.registry.forPlatform(run.platform);
  if (workers.length === 0) return `no worker for platform ${run.platform} is connected`;
  const job = ctx.jobs.getById(run.jobId);
  if (job) {
    const running = ctx.runs.activeCount(run.jobId);
    if (running >= job.concurrency) {
      return `job ${job.name} is at its concurrency limit (${running} of ${job.concurrency} running)`;
    }
  }
  if (workers.every((w) => freeSlots(w) === 0)) {
    return `all ${workers.length} worker${workers.length === 1 ? '' : 's'} for platform ${run.platform} are busy`;
  }
  return 'being dispatched';
}

export function jobView(job: JobRow, opts: { script?: boolean; lastRun?: RunView | null } = {}): JobView {
  return {
    name: job.name,
    platforms: job.platforms,
    schedule: job.schedule,
    timezone: job.timezone,
    missed: job.missed,
    timeoutSec: job.timeoutSec,
    killGraceSec: job.killGraceSec,
    retries: job.retries,
    retryBackoffSec: job.retryBackoffSec,
    concurrency: job.concurrency,
    params: job.params,
    nextRunAt: job.nextRunAt,
    template: job.template,
    alertWebhooks: job.alertWebhooks,
    source: job.source,
    after: job.after,
    secrets: job.secrets,
    definition: job.definition,
    ...(opts.script ? (job.scripts === null ? { script: job.script } : { scripts: job.scripts }) : {}),
    ...(opts.script && job.prepare !== null && { prepare: job.prepare }),
    ...(opts.script && job.prepares !== null && { prepares: job.prepares }),
    ...(opts.lastRun !== undefined ? { lastRun: opts.lastRun } : {}),
  };
}

export function workerView(w: ConnectedWorker): WorkerView {
  return {
    name: w.name,
    platform: w.platform,
    labels: w.labels,
    capacity: w.capacity,
    executor: w.executor,
    connected: true,
    runs: [...w.runs],
    connectedAt: w.connectedAt,
    lastSeenAt: w.lastSeenAt,
  };
}
