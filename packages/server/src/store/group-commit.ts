import { isStorageFull } from '../storage/full.ts';
import type { Db } from './db.ts';

/** What to do once the batch is durable, and (optionally) if it never becomes durable. */
interface After {
  ok: () => void;
  failed: (() => void) | undefined;
}

/**
 * Group commit: every state change made while handling the messages of one event-loop turn
 * goes into one SQLite transaction, committed on setImmediate. Each change runs in its own
 * savepoint (atomic on its own), and whatever it must tell the outside world (acks, assignments,
 * responses) is queued and sent only after the batch commits. A crash before the commit loses
 * only changes nobody was told about.
 *
 * A batch nobody waits on (e.g. a run moving to `running`) is held back up to `lazyMs` so it can
 * ride along with the next batch that someone does wait on: fewer fsyncs, nothing acknowledged early.
 *
 * A batch that cannot be made durable for lack of space (SQLITE_FULL, or ENOSPC while a
 * `beforeFlush` step fsyncs) is rolled back like a crash would: none of its `then` callbacks run
 * (their `failed` ones do), and `onStorageFull` is told, so the owner puts its in-memory state back
 * to what the database says (see runs/resync.ts). Acknowledged therefore still means durable.
 */
export class GroupCommit {
  private open = false;
  /** Set by `abandon`: nothing more is committed. */
  private dead = false;
  private urgent = false;
  private timer: NodeJS.Timeout | undefined;
  private afterCommit: After[] = [];
  private beforeCommit: (() => void)[] = [];
  private readonly savepoint: <T>(fn: () => T) => T;
  commits = 0;
  /** Batches rolled back for lack of space. */
  rollbacks = 0;
  /**
   * A write or a commit failed for lack of space; `rolledBack` when a whole batch was undone
   * (then in-memory state derived from it must be rebuilt from the database).
   */
  onStorageFull: ((err: unknown, rolledBack: boolean) => void) | undefined;

  constructor(
    private readonly db: Db,
    private readonly lazyMs = 10,
  ) {
    // What `db.transaction(fn)()` does, with its statements prepared once: that call builds four
    // wrapper functions and their properties on every write, a third of what the server allocated
    // per run under load (garbage that grew the heap: RSS with a thousand workers).
    const nested = {
      begin: db.prepare('SAVEPOINT builder_write'),
      end: db.prepare('RELEASE builder_write'),
      undo: db.prepare('ROLLBACK TO builder_write'),
    };
    const outer = { begin: db.prepare('BEGIN'), end: db.prepare('COMMIT'), undo: db.prepare('ROLLBACK') };
    this.savepoint = <T>(fn: () => T): T => {
      // no transaction only if SQLite ended the batch's by itself (a full disk): then one of its own
      const { begin, end, undo } = db.inTransaction ? nested : outer;
      begin.run();
      try {
        const result = fn();
        end.run();
        return result;
      } catch (err) {
        if (db.inTransaction) {
          undo.run();
          if (undo !== outer.undo) end.run();
        }
        throw err;
      }
    };
  }

  /**
   * Run `fn` as one atomic change inside the current batch; returns its value at once. If `fn`
   * throws, its savepoint is rolled back and the rest of the batch stands, except after
   * SQLITE_FULL, when SQLite may have rolled back the whole transaction: then the batch is over
   * as if its commit had failed. What `fn` queued with `then` is dropped with its savepoint: it
   * vouched for a change that never happened.
   */
  write<T>(fn: () => T): T {
    if (!this.open) {
      this.db.exec('BEGIN IMMEDIATE');
      this.open = true;
      this.timer = setTimeout(() => this.flush(), this.lazyMs);
    }
    const queued = this.afterCommit.length;
    try {
      return this.savepoint(fn);
    } catch (err) {
      this.afterCommit.length = Math.min(queued, this.afterCommit.length);
      if (isStorageFull(err)) {
        if (this.db.inTransaction) this.onStorageFull?.(err, false);
        else this.rollback(err);
      }
      throw err;
    }
  }

  /**
   * Run `fn` once the current batch is durable (at once if nothing is pending); `failed` instead
   * if the batch is rolled back (e.g. to answer a request with an error rather than never).
   */
  then(fn: () => void, failed?: () => void): void {
    if (!this.open) return fn();
    this.afterCommit.push({ ok: fn, failed });
    this.hurry();
  }

  /**
   * Like `then`, but without hurrying the commit: for replies nobody blocks on at once, such as
   * console acks (the worker has a window of unacknowledged output), so fewer, larger fsyncs.
   */
  thenLazily(fn: () => void, failed?: () => void): void {
    if (!this.open) return fn();
    this.afterCommit.push({ ok: fn, failed });
  }

  /** Commit the open batch soon (on setImmediate) rather than after `lazyMs`: someone waits on it. */
  hurry(): void {
    if (!this.open || this.urgent) return;
    this.urgent = true;
    clearTimeout(this.timer);
    setImmediate(() => this.flush());
  }

  /** Run `fn` just before the batch commits (e.g. fsync files the batch refers to). */
  beforeFlush(fn: () => void): void {
    if (this.open) this.beforeCommit.push(fn);
    else fn();
  }

  /** Batches committed or rolled back so far: tells one open batch from the next. */
  get batchesEnded(): number {
    return this.commits + this.rollbacks;
  }

  get pending(): boolean {
    return this.open;
  }

  /** A simulated crash: the open batch is never committed (closing the database rolls it back). */
  abandon(): void {
    this.dead = true;
    clearTimeout(this.timer);
  }

  /** Commit the batch; false when it was rolled back for lack of space. */
  flush(): boolean {
    if (!this.open || this.dead) return true;
    clearTimeout(this.timer);
    this.urgent = false;
    try {
      // run before taking the list: a step may add another (e.g. fsync what it just wrote)
      for (let i = 0; i < this.beforeCommit.length; i++) this.beforeCommit[i]!();
      // a step's write hit SQLITE_FULL and SQLite undid the whole batch: already rolled back
      if (!this.open) return false;
      this.db.exec('COMMIT');
    } catch (err) {
      // anything but a full disk stays fatal: a restart recovers from the database as after a crash
      if (!isStorageFull(err)) throw err;
      // a write in a `beforeFlush` step may have ended the batch already (SQLITE_FULL)
      if (this.open) this.rollback(err);
      return false;
    }
    this.beforeCommit = [];
    const after = this.afterCommit;
    this.afterCommit = [];
    this.open = false;
    // a step may have hurried the batch it ran in (e.g. an assignment): that batch is done now
    this.urgent = false;
    this.commits++;
    for (const a of after) a.ok();
    return true;
  }

  private rollback(err: unknown): void {
    // SQLite rolls back by itself after some failures (not after SQLITE_FULL on COMMIT in WAL mode)
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
    clearTimeout(this.timer);
    this.open = false;
    this.urgent = false;
    this.beforeCommit = [];
    const after = this.afterCommit;
    this.afterCommit = [];
    this.rollbacks++;
    // the batch's acks, assignments and responses never leave: they would vouch for what is gone
    for (const a of after) a.failed?.();
    this.onStorageFull?.(err, true);
  }
}
