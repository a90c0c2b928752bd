export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
  /** 0 ≤ random() < 1; injectable so tests are deterministic. */
  random: () => number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 5000, factor: 2, random: Math.random };

/**
 * Exponential backoff with "equal jitter": each delay is between half and all of the
 * exponential step, so a crowd of clients that lost the server together spreads out.
 */
export class Backoff {
  readonly #options: BackoffOptions;
  #attempt = 0;

  constructor(options: Partial<BackoffOptions> = {}) {
    this.#options = { ...DEFAULT_BACKOFF, ...options };
  }

  next(): number {
    const { initialMs, maxMs, factor, random } = this.#options;
    const step = Math.min(maxMs, initialMs * factor ** this.#attempt);
    this.#attempt++;
    return Math.round(step / 2 + (random() * step) / 2);
  }

  reset(): void {
    this.#attempt = 0;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
