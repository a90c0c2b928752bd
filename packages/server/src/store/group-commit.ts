import type { Db } from './db.ts';

/**
 * Group commit: every state change made while handling the messages of one event-loop turn
 * goes into one SQLite transaction, committed on setImmediate. Each change runs in its own
 * savepoint (atomic on its own), and whatever it must tell the outside world (acks, assignments,
 * responses) is queued and sent only after the batch commits. A crash before the commit loses
 * only changes nobody was told about.
 *
 * A batch nobody waits on (e.g. a run moving to `running`) is held back up to `lazyMs` so it can
 * ride along with the next batch that someone does wait on: fewer fsyncs, nothing acknowledged early.
 */
export class GroupCommit {
  private open = false;
  /** Set by `abandon`: nothing more is committed. */
  private dead = false;
  private urgent = false;
  private timer: NodeJS.Timeout | undefined;
  private afterCommit: (() => void)[] = [];
  private beforeCommit: (() => void)[] = [];
  private readonly savepoint: <T>(fn: () => T) => T;
  commits = 0;

  constructor(
    private readonly db: Db,
    private readonly lazyMs = 10,
  ) {
    this.savepoint = <T>(fn: () => T): T => this.db.transaction(fn)();
  }

  /** Run `fn` as one atomic change inside the current batch; returns its value at once. */
  write<T>(fn: () => T): T {
    if (!this.open) {
      this.db.exec('BEGIN IMMEDIATE');
      this.open = true;
      this.timer = setTimeout(() => this.flush(), this.lazyMs);
    }
    return this.savepoint(fn);
  }

  /** Run `fn` once the current batch is durable (at once if nothing is pending). */
  then(fn: () => void): void {
    if (!this.open) return fn();
    this.afterCommit.push(fn);
    if (!this.urgent) {
      this.urgent = true;
      clearTimeout(this.timer);
      setImmediate(() => this.flush());
    }
  }

  /**
   * Like `then`, but without hurrying the commit: for replies nobody blocks on at once, such as
   * console acks (the worker has a window of unacknowledged output), so fewer, larger fsyncs.
   */
  thenLazily(fn: () => void): void {
    if (!this.open) return fn();
    this.afterCommit.push(fn);
  }

  /** Run `fn` just before the batch commits (e.g. fsync files the batch refers to). */
  beforeFlush(fn: () => void): void {
    if (this.open) this.beforeCommit.push(fn);
    else fn();
  }

  get pending(): boolean {
    return this.open;
  }

  /** A simulated crash: the open batch is never committed (closing the database rolls it back). */
  abandon(): void {
    this.dead = true;
    clearTimeout(this.timer);
  }

  flush(): void {
    if (!this.open || this.dead) return;
    clearTimeout(this.timer);
    this.urgent = false;
    const before = this.beforeCommit;
    this.beforeCommit = [];
    for (const fn of before) fn();
    this.db.exec('COMMIT');
    this.open = false;
    this.commits++;
    const after = this.afterCommit;
    this.afterCommit = [];
    for (const fn of after) fn();
  }
}
