/**
 * Simulated time: one queue of everything that will happen (server and worker timers, network
 * deliveries, faults), run one task at a time in (time, insertion) order. While installed, the
 * global setTimeout / setInterval / setImmediate and Date.now / performance.now are this queue's,
 * so every timer of the real server and worker code (group commit, hub pings, lease sweep,
 * heartbeats, reconnect backoff, console flush) is driven by it and a seed replays exactly.
 *
 * Not vitest's fake timers: their async advance yields a real setTimeout (≥ 1 ms) per timer, which
 * would make a schedule of thousands of timers take seconds. Here each task is followed by one real
 * setImmediate, enough for the promise chains and process.nextTick work it set off to settle (the
 * code under test does no real I/O but synchronous SQLite and file writes).
 *
 * Every task has an owner (a server or worker incarnation, or the network towards one): what runs
 * inside a task, and the timers it sets, belong to that owner, so a crash drops exactly its timers.
 */
const real = {
  setTimeout: globalThis.setTimeout,
  clearTimeout: globalThis.clearTimeout,
  setInterval: globalThis.setInterval,
  clearInterval: globalThis.clearInterval,
  setImmediate: globalThis.setImmediate,
  clearImmediate: globalThis.clearImmediate,
  dateNow: Date.now,
};
const NODE_MAX_DELAY = 2 ** 31 - 1;

export class Task {
  cancelled = false;
  constructor(
    public at: number,
    public seq: number,
    readonly owner: string,
    readonly fn: () => void,
    readonly every: number | undefined,
  ) {}
  cancel(): void {
    this.cancelled = true;
  }
  // what a Node Timeout offers; the code under test calls unref() and clears by handle
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  hasRef(): boolean {
    return true;
  }
  [Symbol.toPrimitive](): number {
    return this.seq;
  }
}

export class SimTime {
  now: number;
  /** Whose code is running: timers set now belong to it. */
  owner = 'sim';
  /** Whose code the last step ran (the owner when it ended: a driver task may act as the server). */
  lastOwner = 'sim';
  /** Thrown by a task: a crash of the process that ran it, which the simulation reports. */
  readonly errors: { owner: string; error: unknown }[] = [];
  steps = 0;
  private readonly heap: Task[] = [];
  private seq = 0;
  private readonly origin: number;

  constructor(start: number) {
    this.now = start;
    this.origin = start;
  }

  /** Run `fn` as `owner` after `delay` ms of simulated time. */
  at(delay: number, owner: string, fn: () => void, every?: number): Task {
    if (Number.isNaN(delay)) throw new Error(`a task of ${owner} at NaN ms`);
    const t = new Task(this.now + Math.max(0, delay), ++this.seq, owner, fn, every);
    this.push(t);
    return t;
  }

  /** A crash: nothing of this owner runs any more. */
  cancelOwner(owner: string): void {
    for (const t of this.heap) if (t.owner === owner) t.cancelled = true;
  }

  get pending(): number {
    return this.heap.length;
  }

  /** Run the next task (time jumps to it) and let what it set off settle; false when none is left. */
  async step(): Promise<boolean> {
    let t: Task | undefined;
    do t = this.pop();
    while (t?.cancelled);
    if (!t) return false;
    this.now = Math.max(this.now, t.at);
    this.owner = t.owner;
    this.steps++;
    if (t.every !== undefined) {
      t.at = this.now + t.every;
      t.seq = ++this.seq;
      this.push(t);
    }
    try {
      t.fn();
    } catch (error) {
      this.errors.push({ owner: t.owner, error });
    }
    await new Promise<void>((resolve) => real.setImmediate(resolve));
    this.lastOwner = this.owner;
    this.owner = 'sim';
    return true;
  }

  /** Replace the global timers and clocks with this queue's; returns the function that puts them back. */
  install(): () => void {
    const g = globalThis as unknown as Record<string, unknown>;
    const delayOf = (ms: unknown) => {
      const n = Number(ms);
      // Node's rule: not a number, below 1 or beyond 2^31-1 ms means 1 ms
      return Number.isFinite(n) && n >= 1 && n <= NODE_MAX_DELAY ? n : 1;
    };
    const clear = (h: unknown) => {
      if (h instanceof Task) h.cancelled = true;
    };
    g.setTimeout = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) =>
      this.at(delayOf(ms), this.owner, () => fn(...args));
    g.setInterval = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) =>
      this.at(delayOf(ms), this.owner, () => fn(...args), delayOf(ms));
    g.setImmediate = (fn: (...a: unknown[]) => void, ...args: unknown[]) => this.at(0, this.owner, () => fn(...args));
    g.clearTimeout = clear;
    g.clearInterval = clear;
    g.clearImmediate = clear;
    Date.now = () => Math.floor(this.now);
    const perfNow = Object.getOwnPropertyDescriptor(performance, 'now');
    Object.defineProperty(performance, 'now', { value: () => this.now - this.origin, configurable: true });
    return () => {
      g.setTimeout = real.setTimeout;
      g.clearTimeout = real.clearTimeout;
      g.setInterval = real.setInterval;
      g.clearInterval = real.clearInterval;
      g.setImmediate = real.setImmediate;
      g.clearImmediate = real.clearImmediate;
      Date.now = real.dateNow;
      if (perfNow) Object.defineProperty(performance, 'now', perfNow);
      else delete (performance as unknown as Record<string, unknown>).now;
    };
  }

  private push(t: Task): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Task | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Task, b: Task): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** mulberry32: a small seeded PRNG (the soak test's), so a failing schedule can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
