import { formatDuration } from '@builder/protocol';
import { Backoff, sleep } from './backoff.ts';
import type { Context } from './cli/context.ts';
import { ConnectionError } from './errors.ts';

/**
 * The server out of reach while a command rides over it (watch, execute --follow, watch --commit):
 * waits with backoff and jitter between attempts, saying each on stderr, and gives up once the server
 * has been away for `giveUpMs` in one stretch.
 */
export class Outage {
  readonly #ctx: Pick<Context, 'now' | 'warn'>;
  readonly #giveUpMs: number;
  readonly #backoff = new Backoff();
  #since: number | undefined;

  constructor(ctx: Pick<Context, 'now' | 'warn'>, giveUpMs: number) {
    this.#ctx = ctx;
    this.#giveUpMs = giveUpMs;
  }

  /** The server answered: a later loss is a new outage with its own clock and backoff. */
  over(): void {
    this.#since = undefined;
    this.#backoff.reset();
  }

  /** Wait before the next attempt; rejects with the error, saying how long we tried, once it is time to give up. */
  async pause(error: ConnectionError): Promise<void> {
    const now = this.#ctx.now();
    this.#since ??= now;
    const left = this.#giveUpMs - (now - this.#since);
    if (left <= 0) {
      throw new ConnectionError(error.kind, `${error.message}; gave up after ${formatDuration(this.#giveUpMs)}`);
    }
    const delay = Math.min(this.#backoff.next(), left);
    this.#ctx.warn(`${error.message}; retrying in ${formatDuration(delay)}`);
    await sleep(delay);
  }
}
