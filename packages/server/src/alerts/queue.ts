import type { Logger } from '../log.ts';
import type { AlertEvent } from './events.ts';
import type { AlertTarget } from './targets.ts';

export interface DeliveryOptions {
  /** Per attempt: an HTTP request or after-hook taking longer fails. */
  timeoutMs: number;
  /** Attempts per event and target, the first included. */
  maxAttempts: number;
  /** Wait before retry n (n ≥ 1): base · 2^(n-1). */
  retryBaseMs: number;
  /** Events waiting per target beyond this are dropped (oldest first), with a log line. */
  maxQueued: number;
}

export const DEFAULT_DELIVERY: DeliveryOptions = {
  timeoutMs: 10_000,
  maxAttempts: 5,
  retryBaseMs: 1000,
  maxQueued: 1000,
};

/**
 * An in-memory FIFO per target, delivered one event at a time (so a recovery never overtakes its
 * failure), each retried with exponential backoff. Nothing here is awaited by run handling:
 * `push` returns at once and every failure ends in a log line.
 */
export class TargetQueue {
  private readonly pending: AlertEvent[] = [];
  private busy = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  delivered = 0;
  failed = 0;

  constructor(
    readonly target: AlertTarget,
    private readonly opts: DeliveryOptions,
    private readonly logger: Logger,
  ) {}

  push(event: AlertEvent): void {
    if (this.stopped) return;
    this.pending.push(event);
    if (this.pending.length > this.opts.maxQueued) {
      const dropped = this.pending.shift()!;
      this.logger.error('alert.dropped', {
        target: this.target.name,
        alert: dropped.event,
        job: dropped.job,
        why: 'queue full',
      });
    }
    if (!this.busy) void this.drain();
  }

  /** Events not yet delivered (waiting or in flight). */
  get backlog(): number {
    return this.pending.length + (this.busy ? 1 : 0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    if (this.pending.length > 0)
      this.logger.warn('alert.abandoned', { target: this.target.name, events: this.pending.length });
    this.pending.length = 0;
  }

  private async drain(): Promise<void> {
    this.busy = true;
    try {
      while (!this.stopped) {
        const event = this.pending.shift();
        if (!event) break;
        await this.deliver(event);
      }
    } finally {
      this.busy = false;
    }
  }

  private async deliver(event: AlertEvent): Promise<void> {
    const { target, opts, logger } = this;
    const fields = { target: target.name, alert: event.event, job: event.job, run: event.run?.id };
    for (let attempt = 1; ; attempt++) {
      try {
        await target.send(event, opts.timeoutMs);
        this.delivered++;
        logger.info('alert.delivered', { ...fields, attempt });
        return;
      } catch (err) {
        const error = (err as Error).message;
        if (attempt >= opts.maxAttempts || this.stopped) {
          this.failed++;
          logger.error('alert.failed', { ...fields, attempt, error, giving_up: true });
          return;
        }
        const delayMs = opts.retryBaseMs * 2 ** (attempt - 1);
        logger.warn('alert.retry', { ...fields, attempt, error, retryInMs: delayMs });
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          this.timer = setTimeout(resolve, delayMs);
          this.timer.unref();
        });
        this.wake = undefined;
        if (this.stopped) return;
      }
    }
  }
}
