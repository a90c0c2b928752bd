import type { RunResult, RunState } from '@builder/protocol';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { GroupCommit } from '../store/group-commit.ts';
import type { JobStore } from '../store/jobs.ts';
import type { RunHistory } from '../store/run-history.ts';
import type { RunEvent } from '../run-events.ts';
import type { JobRow, RunRow } from '../store/rows.ts';
import { eventsForEnd, type AlertEvent } from './events.ts';
import { DEFAULT_DELIVERY, TargetQueue, type DeliveryOptions } from './queue.ts';
import { afterTarget, alertmanagerTarget, webhookTarget, type AlertTarget } from './targets.ts';

export interface AlertOptions {
  webhooks: string[];
  alertmanagers: string[];
  /** Executables run per event, like Laminar's `after`. */
  after: string[];
  /** Base of the links in alerts; default: the URL the server listens on. */
  publicUrl?: string;
  delivery?: Partial<DeliveryOptions>;
}

/**
 * Turns run ends (run events, delivered once committed) and missed schedule slots into alert
 * events, queued for every target. Never throws into its callers and never waits on a delivery.
 */
export class Alerts {
  readonly queues: TargetQueue[];
  /** Base of links; set by the server once it listens unless configured. */
  publicUrl: string;
  /** Jobs' own webhooks, one queue per URL, made when first needed. */
  private readonly jobQueues = new Map<string, TargetQueue>();
  private readonly delivery: DeliveryOptions;

  constructor(
    private readonly deps: {
      commit: GroupCommit;
      history: Pick<RunHistory, 'previousOutcome'>;
      jobs: Pick<JobStore, 'alertWebhooks'>;
      clock: Clock;
      logger: Logger;
    },
    opts: AlertOptions,
    targets?: AlertTarget[],
  ) {
    this.publicUrl = opts.publicUrl ?? '';
    const delivery = { ...DEFAULT_DELIVERY, ...opts.delivery };
    this.delivery = delivery;
    const all = targets ?? [
      ...opts.webhooks.map(webhookTarget),
      ...opts.alertmanagers.map((u) => alertmanagerTarget(u, () => this.publicUrl)),
      ...opts.after.map(afterTarget),
    ];
    this.queues = all.map((t) => new TargetQueue(t, delivery, deps.logger));
  }

  /** The run-event listener: ended attempts raise alerts. */
  readonly onRunEvent = (e: RunEvent): void => {
    if (e.type === 'ended') this.runEnded(e.attempt, e.run.state, e.result, e.finishedAt);
  };

  /**
   * An attempt of `run` (the row as it was) ended with `result` at `finishedAt`, committed;
   * `state` is the run's new state (`queued`: retried).
   */
  runEnded(run: RunRow, state: RunState, result: RunResult, finishedAt: number): void {
    try {
      const hooks = this.deps.jobs.alertWebhooks(run.jobId);
      // nobody to tell: skip the previous-run query on the hot path of every finished run
      if (this.queues.length === 0 && hooks.length === 0) return;
      // read after the commit: the run before this one, not a later one ended in the same batch
      const previous = state === 'succeeded' ? this.deps.history.previousOutcome(run, finishedAt) : undefined;
      const events = eventsForEnd(run, state, result, previous, this.publicUrl, this.deps.clock.now());
      for (const e of events) this.emit(e, hooks);
    } catch (err) {
      this.deps.logger.error('alert.error', { run: run.id, error: (err as Error).message });
    }
  }

  /** A schedule slot of `job` was missed (handled later than the grace). */
  missed(job: JobRow, due: number, policy: 'once' | 'skip'): void {
    const e: AlertEvent = {
      event: 'missed',
      job: job.name,
      run: null,
      time: new Date(this.deps.clock.now()).toISOString(),
      due: new Date(due).toISOString(),
      policy,
      platforms: job.platforms,
    };
    this.deps.commit.then(() => this.emit(e, job.alertWebhooks));
  }

  /**
   * The server started refusing writes because its data dir is full. Sent at once: there is no
   * change to wait for (and none could be committed). Global targets only: it concerns no job.
   */
  storageFull(cause: string, freeBytes: number | undefined): void {
    const e: AlertEvent = {
      event: 'storage-full',
      job: '',
      run: null,
      time: new Date(this.deps.clock.now()).toISOString(),
      cause,
      ...(freeBytes !== undefined && { freeBytes }),
    };
    this.emit(e);
  }

  /** To every global target, and to the job's own webhooks. */
  emit(e: AlertEvent, jobHooks: readonly string[] = []): void {
    for (const q of this.queues) q.push(e);
    for (const url of jobHooks) {
      let q = this.jobQueues.get(url);
      if (!q) this.jobQueues.set(url, (q = new TargetQueue(webhookTarget(url), this.delivery, this.deps.logger)));
      q.push(e);
    }
  }

  stop(): void {
    for (const q of this.queues) q.stop();
    for (const q of this.jobQueues.values()) q.stop();
  }
}
