import type { Assignment } from '@builder/protocol';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { RunEvent, RunEvents } from '../run-events.ts';
import type { ActiveRuns } from '../runs/active.ts';
import { runUrl } from '../alerts/events.ts';
import { attemptSecret } from '../runs/attempt-secret.ts';
import type { GroupCommit } from '../store/group-commit.ts';
import type { InputStore } from '../store/inputs.ts';
import type { JobStore } from '../store/jobs.ts';
import type { PlatformStore } from '../store/platforms.ts';
import type { RunRow } from '../store/rows.ts';
import type { RunStore } from '../store/runs.ts';
import type { SecretStore } from '../store/secrets.ts';
import { freeSlots, type ConnectedWorker, type Registry } from '../workers/registry.ts';

export interface DispatcherDeps {
  commit: GroupCommit;
  runs: RunStore;
  jobs: Pick<JobStore, 'getById'>;
  platforms: Pick<PlatformStore, 'isDropped'>;
  secrets: Pick<SecretStore, 'resolve'>;
  /** What the run's job finds in $BUILDER_INPUT: each attempt (a retry too) gets the same files. */
  inputs: Pick<InputStore, 'forRun'>;
  registry: Registry;
  active: ActiveRuns;
  events: RunEvents;
  /** Only `refusing` is read: while the disk is full nothing is assigned. */
  storage: { readonly refusing: boolean };
  /** The key each attempt's artifact secret is derived from (runs/attempt-secret.ts). */
  attemptKey: Buffer;
  clock: Clock;
  logger: Logger;
  leaseMs: number;
  /** A line from the server in a run's console (Lifecycle.systemLine). */
  systemLine: (runId: string, text: string) => void;
  /** The server's public URL (known once it listens), for the job's BUILDER_URL. */
  publicUrl: () => string;
}

/** The events after which a queued run may find a slot. */
const WAKES: ReadonlySet<RunEvent['type']> = new Set([
  'queued',
  'requeued',
  'ended',
  'worker-ready',
  'platform-undropped',
]);

/**
 * Push dispatch: follows the run events that may let a queued run go (a run queued, a slot freed, a
 * worker came, a platform undropped), a backoff's end, and the end of a storage outage. Assigns
 * queued runs to the worker with the most free slots; the `assign` message leaves only after the
 * assignment is committed.
 *
 * The events of a batch make one dispatch, inside that batch just before it commits
 * (RunEvents.beforeCommit): the assignment is committed with the change that made it possible, and
 * undone with it if the batch is rolled back.
 */
export class Dispatcher {
  private backoffTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly ctx: DispatcherDeps) {
    ctx.events.beforeCommit((events) => {
      if (events.some((e) => WAKES.has(e.type))) this.dispatch();
    });
  }

  dispatch(): void {
    const { ctx } = this;
    if (this.stopped) return;
    // an assignment is a write: while the disk is full runs wait, and the outage's end dispatches
    if (ctx.storage.refusing) return;
    const now = ctx.clock.now();
    for (const platform of ctx.registry.platforms()) {
      if (ctx.platforms.isDropped(platform)) continue;
      const workers = ctx.registry.forPlatform(platform);
      for (;;) {
        const free = mostFree(workers);
        if (!free) break;
        const run = ctx.runs.nextQueued(platform, now);
        if (!run) break;
        // a rebuild shows more when made elsewhere: another worker than the original's, if one is free
        const worker = run.rebuildOf === null ? free : (otherThan(workers, this.originalWorker(run)) ?? free);
        const assigned = ctx.commit.write(() => this.assign(run, worker, now));
        ctx.events.emit({ type: 'assigned', run: assigned });
      }
    }
    this.armBackoff(now);
  }

  private originalWorker(run: RunRow): string | null {
    return run.rebuildOf === null ? null : (this.ctx.runs.getByNumber(run.job, run.rebuildOf)?.worker ?? null);
  }

  stop(): void {
    this.stopped = true;
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
  }

  private assign(run: RunRow, worker: ConnectedWorker, now: number): RunRow {
    const { ctx } = this;
    const assigned = ctx.runs.assign(run, worker.name, now);
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
      ctx.systemLine(run.id, `attempt ${run.attempt} of ${run.maxAttempts} on worker ${worker.name}`);
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
      ...(run.prepare !== null && { prepare: run.prepare }),
      params: run.params,
      timeoutSec: run.timeoutSec,
      killGraceSec: run.killGraceSec,
      attemptSecret: attemptSecret(ctx.attemptKey, run.id, run.attempt, worker.name),
      secrets: secrets?.values ?? {},
      missingSecrets: secrets?.missing ?? [],
      ...(job?.source && run.ref !== null && { source: { git: job.source.git, ref: run.ref } }),
      ...(ctx.publicUrl() !== '' && {
        serverUrl: ctx.publicUrl(),
        runUrl: runUrl(ctx.publicUrl(), run.job, run.number),
      }),
      inputs: ctx.inputs.forRun(run.id).map(({ name, size, sha256 }) => ({ name, size, sha256 })),
    };
    ctx.logger.debug('run.assigned', {
      run: run.id,
      job: run.job,
      number: run.number,
      worker: worker.name,
      attempt: run.attempt,
    });
    ctx.commit.then(() => worker.send({ type: 'assign', run: assignment }));
    return assigned;
  }

  private armBackoff(now: number): void {
    const { ctx } = this;
    if (this.stopped) return;
    const t = ctx.runs.nextBackoff(now);
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    if (t === null) return;
    this.backoffTimer = setTimeout(() => this.dispatch(), Math.max(1, t - now + 1));
    this.backoffTimer.unref();
  }
}

function mostFree(workers: readonly ConnectedWorker[]): ConnectedWorker | undefined {
  let best: ConnectedWorker | undefined;
  let bestFree = 0;
  for (const w of workers) {
    const free = freeSlots(w);
    if (free > bestFree) ((best = w), (bestFree = free));
  }
  return best;
}

/** The worker with the most free slots that is not `avoid`; undefined when only `avoid` has room. */
function otherThan(workers: readonly ConnectedWorker[], avoid: string | null): ConnectedWorker | undefined {
  return avoid === null ? undefined : mostFree(workers.filter((w) => w.name !== avoid));
}
