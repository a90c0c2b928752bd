import type { RunResult, RunState } from '@builder/protocol';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { AlertOutboxStore } from '../store/alert-outbox.ts';
import type { GroupCommit } from '../store/group-commit.ts';
import type { JobStore } from '../store/jobs.ts';
import type { RunHistory } from '../store/run-history.ts';
import type { RunEvent } from '../run-events.ts';
import type { JobRow, RunRow } from '../store/rows.ts';
import { eventsForEnd, FAILED_STATES, type AlertEvent } from './events.ts';
import { OutboxSender } from './outbox.ts';
import { DEFAULT_DELIVERY, type DeliveryOptions } from './queue.ts';
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

export interface AlertsDeps {
  commit: GroupCommit;
  history: Pick<RunHistory, 'previousOutcome'>;
  jobs: Pick<JobStore, 'alertWebhooks'>;
  outbox: AlertOutboxStore;
  clock: Clock;
  logger: Logger;
  /** An undelivered alert was dropped because its target's outbox was full (for the metric). */
  dropped?: (target: string) => void;
}

/**
 * Turns run ends and missed schedule slots into alert events, stored in the outbox of every target
 * in the batch of the change that raised them (`onBatch` is a RunEvents.beforeCommit listener), and
 * keeps the set of failing job+platform pairs (`alerts_firing`) in the same batch. One OutboxSender
 * per target delivers them once committed. Never waits on a delivery.
 */
export class Alerts {
  /** Base of links; set by the server once it listens unless configured. */
  publicUrl: string;
  /** The server's own targets, and jobs' webhooks (made when first needed), by target name. */
  private readonly senders = new Map<string, OutboxSender>();
  private readonly global: OutboxSender[];
  private readonly delivery: DeliveryOptions;
  private stopped = false;

  constructor(
    private readonly deps: AlertsDeps,
    opts: AlertOptions,
    targets?: AlertTarget[],
  ) {
    this.publicUrl = opts.publicUrl ?? '';
    const delivery = { ...DEFAULT_DELIVERY, ...opts.delivery };
    this.delivery = delivery;
    // Prometheus sends `endsAt` 4 intervals ahead: one lost post does not resolve anything
    const window = { clock: deps.clock, aheadMs: 4 * delivery.resendMs };
    const all = targets ?? [
      ...opts.webhooks.map(webhookTarget),
      ...opts.alertmanagers.map((u) => alertmanagerTarget(u, () => this.publicUrl, window)),
      ...opts.after.map(afterTarget),
    ];
    this.global = all.map((t) => this.sender(t));
    // what the last process left undelivered: jobs' webhooks go on; targets no longer configured go
    for (const name of deps.outbox.targets()) {
      if (this.senders.has(name)) continue;
      if (name.startsWith('webhook ')) this.sender(webhookTarget(name.slice('webhook '.length)));
      else {
        const n = deps.commit.write(() => deps.outbox.discard(name));
        deps.logger.warn('alert.dropped', { target: name, alerts: n, why: 'target no longer configured' });
      }
    }
    for (const s of this.senders.values()) s.start();
  }

  /** The beforeCommit listener: ended attempts raise alerts, written to the same batch. */
  readonly onBatch = (events: readonly RunEvent[]): void => {
    for (const e of events) if (e.type === 'ended') this.runEnded(e.attempt, e.run.state, e.result, e.finishedAt);
  };

  /**
   * An attempt of `run` (the row as it was) ended with `result` at `finishedAt`, in the open batch;
   * `state` is the run's new state (`queued`: retried).
   */
  runEnded(run: RunRow, state: RunState, result: RunResult, finishedAt: number): void {
    const { deps } = this;
    const failed = FAILED_STATES.has(state);
    if (!failed && state !== 'succeeded' && result.kind !== 'lost') return;
    const hooks = deps.jobs.alertWebhooks(run.jobId);
    const now = deps.clock.now();
    // nobody to tell: only what is failing is kept (for a target configured later, and the metric)
    const tell = this.global.length > 0 || hooks.length > 0;
    const events = !tell
      ? []
      : eventsForEnd(
          run,
          state,
          result,
          // the run before this one (the batch holds this one's end, not yet a later one's)
          state === 'succeeded' ? deps.history.previousOutcome(run, finishedAt) : undefined,
          this.publicUrl,
          now,
        );
    deps.commit.write(() => {
      if (failed) {
        const failure =
          events.find((e) => e.event === 'failure') ?? firingEvent(run, state, result, this.publicUrl, now);
        deps.outbox.fire(run.jobId, run.platform, now, JSON.stringify(failure));
      } else if (state === 'succeeded' && deps.outbox.resolve(run.jobId, run.platform) !== undefined) {
        // it was firing: whatever the run history says, Alertmanager must hear it resolved
        if (tell && !events.some((e) => e.event === 'recovery'))
          events.push(...eventsForEnd(run, state, result, 'failed', this.publicUrl, now));
      }
      for (const e of events) this.enqueue(e, hooks);
    });
  }

  /** A schedule slot of `job` was missed (handled later than the grace); called inside the slot's write. */
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
    this.deps.commit.write(() => this.enqueue(e, job.alertWebhooks));
  }

  /**
   * The server started refusing writes because its data dir is full. Sent at once and not stored:
   * nothing can be committed. Global targets only: it concerns no job.
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
    for (const s of this.global) s.pushTransient(e);
  }

  /** Into the outbox of every global target and of the job's own webhooks; call inside a write. */
  private enqueue(e: AlertEvent, jobHooks: readonly string[] = []): void {
    const { deps } = this;
    const body = JSON.stringify(e);
    const now = deps.clock.now();
    const to = [...this.global];
    for (const url of jobHooks) {
      const name = webhookTarget(url).name;
      to.push(this.senders.get(name) ?? this.sender(webhookTarget(url)));
    }
    for (const s of new Set(to)) {
      const name = s.target.name;
      for (const d of deps.outbox.add(name, body, now, this.delivery.maxQueued)) {
        const old = JSON.parse(d.body) as AlertEvent;
        deps.logger.error('alert.dropped', {
          target: name,
          alert: old.event,
          job: old.job,
          why: `outbox full (${this.delivery.maxQueued} waiting)`,
        });
        deps.dropped?.(name);
      }
      deps.commit.thenLazily(() => s.wake());
    }
  }

  private sender(target: AlertTarget): OutboxSender {
    const s = new OutboxSender(target, this.deps, this.delivery);
    this.senders.set(target.name, s);
    if (this.stopped) s.stop();
    return s;
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.senders.values()) s.stop();
  }
}

/** The failure event a failed run raises, also when nobody is told now (kept in alerts_firing). */
function firingEvent(run: RunRow, state: RunState, result: RunResult, publicUrl: string, now: number): AlertEvent {
  return eventsForEnd(run, state, result, undefined, publicUrl, now).find((e) => e.event === 'failure')!;
}
