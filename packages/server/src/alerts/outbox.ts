import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { AlertOutboxStore, FiringRow } from '../store/alert-outbox.ts';
import type { GroupCommit } from '../store/group-commit.ts';
import type { AlertEvent } from './events.ts';
import type { DeliveryOptions } from './queue.ts';
import type { AlertTarget } from './targets.ts';

export interface OutboxSenderDeps {
  outbox: Pick<AlertOutboxStore, 'head' | 'delivered' | 'failed' | 'firing'>;
  commit: Pick<GroupCommit, 'write' | 'thenLazily' | 'pending'>;
  clock: Clock;
  logger: Logger;
}

/**
 * Delivers one target's outbox rows, oldest first, one at a time (a recovery never overtakes its
 * failure): a row is deleted once delivered, and a failed one is held back with exponential
 * backoff written to the row, so a restart goes on where this process stopped. Reads only what is
 * committed (never a row of a batch that may still roll back). For an Alertmanager, whenever its
 * outbox is empty and `resendMs` has passed, the firing alerts are posted again (as Prometheus does),
 * so Alertmanager keeps them firing.
 */
export class OutboxSender {
  private stopped = false;
  private running = false;
  /** Set by `wake`: something new may be there; the loop looks again before it sleeps. */
  private kicked = false;
  private sleeping: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  /** Events that cannot be committed (storage-full), delivered before the outbox, not durable. */
  private readonly transient: AlertEvent[] = [];
  private lastResend = -Infinity;
  delivered = 0;

  constructor(
    readonly target: AlertTarget,
    private readonly deps: OutboxSenderDeps,
    private readonly opts: DeliveryOptions,
  ) {}

  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    void this.loop().finally(() => (this.running = false));
  }

  /** The loop, kept alive through errors (e.g. a full disk refusing the delete of a delivered row). */
  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.step();
      } catch (err) {
        this.deps.logger.error('alert.outbox_error', { target: this.target.name, error: (err as Error).message });
        await this.sleep(Math.max(this.opts.retryBaseMs, 100), false);
      }
    }
  }

  /** Rows for this target were committed. */
  wake(): void {
    this.kicked = true;
    if (this.sleeping) this.sleeping.resolve();
    else this.start();
  }

  /** Deliver `e` without storing it (it concerns a database that cannot be written). */
  pushTransient(e: AlertEvent): void {
    if (this.stopped) return;
    this.transient.push(e);
    if (this.transient.length > this.opts.maxQueued) this.transient.shift();
    this.wake();
  }

  stop(): void {
    this.stopped = true;
    this.sleeping?.resolve();
  }

  /** One thing to do: a transient event, the oldest row, a re-send, or waiting for one of those. */
  private async step(): Promise<void> {
    const { deps, target, opts } = this;
    this.kicked = false;
    const event = this.transient.shift();
    if (event) return this.sendTransient(event);
    const head = await this.committed(() => deps.outbox.head(target.name));
    if (this.stopped) return;
    const now = deps.clock.now();
    if (head) {
      if (head.notBefore > now) return this.sleep(head.notBefore - now, false);
      return this.deliver(head.id, head.attempts, JSON.parse(head.body) as AlertEvent);
    }
    if (target.resend && opts.resendMs > 0) {
      const due = this.lastResend + opts.resendMs;
      if (due <= now) {
        this.lastResend = now;
        const firing = await this.committed(() => deps.outbox.firing());
        if (firing.length > 0) await this.resend(firing);
        return;
      }
      if (!this.kicked) await this.sleep(due - now, true);
      return;
    }
    if (!this.kicked) await this.sleep(Infinity, true);
  }

  /** Run `read` once no batch is open: it sees only committed rows. */
  private committed<T>(read: () => T): Promise<T> {
    const { commit } = this.deps;
    return new Promise<T>((resolve, reject) => {
      const attempt = (): void => {
        if (commit.pending) return commit.thenLazily(attempt, attempt);
        try {
          resolve(read());
        } catch (err) {
          reject(err as Error);
        }
      };
      attempt();
    });
  }

  /** Wait `ms` (or until stopped; also until woken when `wakeable`). */
  private sleep(ms: number, wakeable: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleeping = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.min(ms, 2 ** 31 - 1));
      timer.unref();
      this.sleeping = { timer, resolve: wakeable ? done : () => this.stopped && done() };
    });
  }

  private async deliver(id: number, attempts: number, event: AlertEvent): Promise<void> {
    const { deps, target, opts } = this;
    const fields = { target: target.name, alert: event.event, job: event.job, run: event.run?.id };
    try {
      await target.send(event, opts.timeoutMs);
    } catch (err) {
      if (this.stopped) return; // the row stays: the next start tries again
      const attempt = attempts + 1;
      const error = (err as Error).message;
      if (opts.maxAttempts > 0 && attempt >= opts.maxAttempts) {
        deps.commit.write(() => deps.outbox.delivered(id));
        deps.logger.error('alert.failed', { ...fields, attempt, error, giving_up: true });
        return;
      }
      const delayMs = Math.min(opts.retryMaxMs, opts.retryBaseMs * 2 ** (attempt - 1));
      deps.commit.write(() => deps.outbox.failed(id, attempt, deps.clock.now() + delayMs));
      deps.logger.warn('alert.retry', { ...fields, attempt, error, retryInMs: delayMs });
      return;
    }
    deps.commit.write(() => deps.outbox.delivered(id));
    this.delivered++;
    deps.logger.info('alert.delivered', { ...fields, attempt: attempts + 1 });
  }

  private async sendTransient(event: AlertEvent): Promise<void> {
    const { deps, target, opts } = this;
    const fields = { target: target.name, alert: event.event, job: event.job };
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await target.send(event, opts.timeoutMs);
        this.delivered++;
        deps.logger.info('alert.delivered', { ...fields, attempt });
        return;
      } catch (err) {
        const error = (err as Error).message;
        if (opts.maxAttempts > 0 && attempt >= opts.maxAttempts) {
          deps.logger.error('alert.failed', { ...fields, attempt, error, giving_up: true });
          return;
        }
        const delayMs = Math.min(opts.retryMaxMs, opts.retryBaseMs * 2 ** (attempt - 1));
        deps.logger.warn('alert.retry', { ...fields, attempt, error, retryInMs: delayMs });
        await this.sleep(delayMs, false);
      }
    }
  }

  private async resend(firing: FiringRow[]): Promise<void> {
    try {
      await this.target.resend!(firing, this.opts.timeoutMs);
      this.deps.logger.debug('alert.resent', { target: this.target.name, alerts: firing.length });
    } catch (err) {
      // the next interval tries again; Alertmanager keeps them until the endsAt it was last sent
      this.deps.logger.warn('alert.resend_failed', { target: this.target.name, error: (err as Error).message });
    }
  }
}
