import { randomUUID } from 'node:crypto';
import {
  canTransition,
  stateForResult,
  type Environment,
  type Params,
  type RunResult,
  type RunState,
} from '@builder/protocol';
import { readRows, type Db } from './db.ts';
import { EnvironmentStore } from './environments.ts';
import { runFromRaw, type RawRun, type RunRow } from './rows.ts';

const SELECT = 'SELECT runs.*, jobs.name AS job FROM runs JOIN jobs ON jobs.id = runs.job_id';

export interface NewRun {
  jobId: number;
  number: number;
  platform: string;
  script: string;
  params: Params;
  trigger: RunRow['trigger'];
  maxAttempts: number;
  retryBackoffSec: number;
  timeoutSec: number;
  killGraceSec: number;
  priority: number;
  queuedAt: number;
  /** The source ref to check out; null for a job without a source. */
  ref?: string | null;
  /** The run whose success queued this one (`after:`). */
  afterRun?: string | null;
  /** A rebuild of this job's run with that number (same commit, script and parameters). */
  rebuildOf?: number | null;
  /** The prepare step (root, network) before the script; null: none. */
  prepare?: string | null;
}

/** A transition the state machine does not allow: a bug, never a wire condition. */
export class IllegalTransitionError extends Error {
  constructor(runId: string, from: RunState, to: RunState) {
    super(`run ${runId}: illegal transition ${from} → ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

/**
 * Runs and their state machine (TRANSITIONS in @builder/protocol). Each method is one change,
 * meant to be called inside GroupCommit.write so it is one atomic step of a batch.
 */
export class RunStore {
  private readonly byId;
  private readonly byNumber;
  private readonly insertStmt;
  private readonly nextQueuedStmt;
  private readonly setAssigned;
  private readonly setRunning;
  private readonly setLog;
  private readonly setFinished;
  private readonly setRequeued;
  private readonly insertAttempt;
  private readonly activeStmt;
  private readonly activeCountStmt;
  private readonly nextBackoffStmt;
  private readonly hasQueuedStmt;

  /** Where each run ran (recorded with `started`). */
  readonly environments: EnvironmentStore;

  constructor(private readonly db: Db) {
    this.environments = new EnvironmentStore(db);
    this.byId = readRows(db.prepare<[string], RawRun>(`${SELECT} WHERE runs.id = ?`));
    this.byNumber = readRows(db.prepare<[string, number], RawRun>(`${SELECT} WHERE jobs.name = ? AND runs.number = ?`));
    this.insertStmt = db.prepare(
      `INSERT INTO runs (id, job_id, number, platform, script, params, trigger, state, attempt, max_attempts,
       retry_backoff_s, timeout_s, kill_grace_s, priority, queued_at, ref, after_run, rebuild_of, prepare, trigger_kind)
       VALUES (@id, @jobId, @number, @platform, @script, @params, @trigger, 'queued', 1, @maxAttempts,
       @retryBackoffSec, @timeoutSec, @killGraceSec, @priority, @queuedAt, @ref, @afterRun, @rebuildOf, @prepare,
       @triggerKind)`,
    );
    this.nextQueuedStmt = readRows(
      db.prepare<[string, number], RawRun>(
        `${SELECT} WHERE runs.state = 'queued' AND runs.platform = ? AND (runs.not_before IS NULL OR runs.not_before <= ?)
       AND (SELECT COUNT(*) FROM runs a WHERE a.job_id = runs.job_id AND a.state IN ('assigned', 'running')) < jobs.concurrency
       ORDER BY runs.priority DESC, runs.queued_at, runs.number LIMIT 1`,
      ),
    );
    this.setAssigned = db.prepare(
      `UPDATE runs SET state = 'assigned', worker = ?, assigned_at = ?, log_seq = 0 WHERE id = ? AND state = 'queued'`,
    );
    this.setRunning = db.prepare(
      `UPDATE runs SET state = 'running', started_at = ?, commit_sha = coalesce(?, commit_sha) WHERE id = ? AND attempt = ?`,
    );
    this.setLog = db.prepare('UPDATE runs SET log_seq = ?, log_bytes = ?, log_carry = ? WHERE id = ?');
    this.setFinished = db.prepare(
      'UPDATE runs SET state = ?, result = ?, finished_at = ? WHERE id = ? AND attempt = ?',
    );
    this.setRequeued = db.prepare(
      `UPDATE runs SET state = 'queued', attempt = ?, not_before = ?, worker = NULL, assigned_at = NULL,
       started_at = NULL, log_seq = 0 WHERE id = ?`,
    );
    this.insertAttempt = db.prepare(
      'INSERT OR REPLACE INTO attempts (run_id, attempt, worker, started_at, finished_at, result) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.activeStmt = readRows(db.prepare<[], RawRun>(`${SELECT} WHERE runs.state IN ('assigned', 'running')`));
    this.nextBackoffStmt = db.prepare<[number], { t: number | null }>(
      `SELECT MIN(not_before) AS t FROM runs INDEXED BY runs_backoff WHERE state = 'queued' AND not_before IS NOT NULL AND not_before > ?`,
    );
    this.hasQueuedStmt = db.prepare<[number, string], { one: 1 }>(
      `SELECT 1 AS one FROM runs WHERE job_id = ? AND platform = ? AND state = 'queued' LIMIT 1`,
    );
    this.activeCountStmt = db.prepare<[number], { n: number }>(
      `SELECT COUNT(*) AS n FROM runs WHERE job_id = ? AND state IN ('assigned', 'running')`,
    );
  }

  get(id: string): RunRow | undefined {
    const row = this.byId.get(id);
    return row ? runFromRaw(row) : undefined;
  }

  getByNumber(job: string, number: number): RunRow | undefined {
    const row = this.byNumber.get(job, number);
    return row ? runFromRaw(row) : undefined;
  }

  insert(run: NewRun): RunRow {
    const id = randomUUID();
    this.insertStmt.run({
      ...run,
      id,
      params: JSON.stringify(run.params),
      ...storedTrigger(run.trigger),
      ref: run.ref ?? null,
      afterRun: run.afterRun ?? null,
      rebuildOf: run.rebuildOf ?? null,
      prepare: run.prepare ?? null,
    });
    return this.get(id)!;
  }

  /** The run a worker of `platform` should get next: priority, then FIFO; respects backoff and job concurrency. */
  nextQueued(platform: string, now: number): RunRow | undefined {
    const row = this.nextQueuedStmt.get(platform, now);
    return row ? runFromRaw(row) : undefined;
  }

  /** When the next queued run in retry backoff after `now` becomes eligible; null when none waits. */
  nextBackoff(now: number): number | null {
    return this.nextBackoffStmt.get(now)?.t ?? null;
  }

  /** Whether `job` already has a run waiting for `platform`. */
  hasQueued(jobId: number, platform: string): boolean {
    return this.hasQueuedStmt.get(jobId, platform) !== undefined;
  }

  active(): RunRow[] {
    return this.activeStmt.all().map(runFromRaw);
  }

  activeCount(jobId: number): number {
    return this.activeCountStmt.get(jobId)!.n;
  }

  list(filter: { job?: number; state?: RunState; platform?: string; limit: number; before?: number }): RunRow[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.job !== undefined) (where.push('runs.job_id = ?'), args.push(filter.job));
    if (filter.state !== undefined) (where.push('runs.state = ?'), args.push(filter.state));
    if (filter.platform !== undefined) (where.push('runs.platform = ?'), args.push(filter.platform));
    const sql = `${SELECT}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY runs.queued_at DESC, runs.number DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, filter.limit) as RawRun[]).map(runFromRaw);
  }

  queued(limit: number): RunRow[] {
    return (
      this.db
        .prepare(
          `${SELECT} WHERE runs.state = 'queued' ORDER BY runs.priority DESC, runs.queued_at, runs.number LIMIT ?`,
        )
        .all(limit) as RawRun[]
    ).map(runFromRaw);
  }

  countByPlatform(): { platform: string; state: RunState; n: number }[] {
    return this.db
      .prepare(
        `SELECT platform, state, COUNT(*) AS n FROM runs WHERE state IN ('queued', 'assigned', 'running') GROUP BY platform, state`,
      )
      .all() as { platform: string; state: RunState; n: number }[];
  }

  /** Newest run of a job (or any job) matching platform and parameters. */
  latest(filter: { job?: number; platform?: string; params?: Params }): RunRow | undefined {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.job !== undefined) (where.push('runs.job_id = ?'), args.push(filter.job));
    if (filter.platform !== undefined) (where.push('runs.platform = ?'), args.push(filter.platform));
    for (const [k, v] of Object.entries(filter.params ?? {})) {
      where.push('json_extract(runs.params, ?) = ?');
      args.push(`$."${k}"`, v);
    }
    const sql = `${SELECT}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY runs.queued_at DESC, runs.number DESC LIMIT 1`;
    const row = this.db.prepare(sql).get(...args) as RawRun | undefined;
    return row ? runFromRaw(row) : undefined;
  }

  /**
   * A run that happened elsewhere (`builder-client upload`): recorded already succeeded, outside
   * the dispatch state machine, since no worker ever held it.
   */
  /** Whether `afterRun`'s success already queued a run of this job (`after:`, once per success). */
  hasFollower(jobId: number, afterRun: string): boolean {
    return (
      this.db
        .prepare<[number, string], { n: number }>('SELECT COUNT(*) AS n FROM runs WHERE job_id = ? AND after_run = ?')
        .get(jobId, afterRun)!.n > 0
    );
  }

  insertUploaded(run: NewRun & { worker: string; finishedAt: number }): RunRow {
    const inserted = this.insert(run);
    const result: RunResult = { kind: 'exited', code: 0 };
    this.db
      .prepare(
        `UPDATE runs SET state = 'succeeded', worker = ?, assigned_at = ?, started_at = ?, finished_at = ?, result = ? WHERE id = ?`,
      )
      .run(run.worker, run.finishedAt, run.finishedAt, run.finishedAt, JSON.stringify(result), inserted.id);
    this.insertAttempt.run(inserted.id, 1, run.worker, run.finishedAt, run.finishedAt, JSON.stringify(result));
    return this.get(inserted.id)!;
  }

  /**
   * Runs of a commit, newest first: those whose source resolved to it (a full SHA or a prefix), and
   * those asked for by that SHA that have not started yet (a push hook queues the pushed SHA).
   */
  forCommit(sha: string, filter: { job?: number; limit: number }): RunRow[] {
    // a hex prefix: every SHA that starts with it sorts in [prefix, prefix + 'g')
    const hi = `${sha}g`;
    const job = filter.job === undefined ? '' : ' AND runs.job_id = ?';
    const args: (string | number)[] = [sha, hi, sha, hi];
    if (filter.job !== undefined) args.push(filter.job);
    const sql = `${SELECT} WHERE ((runs.commit_sha >= ? AND runs.commit_sha < ?)
      OR (runs.commit_sha IS NULL AND runs.ref >= ? AND runs.ref < ?))${job}
      ORDER BY runs.queued_at DESC, runs.number DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, filter.limit) as RawRun[]).map(runFromRaw);
  }

  // ---- transitions ----

  // Each returns the row as it now is, made from the one it was given: no read after the write.

  assign(run: RunRow, worker: string, now: number): RunRow {
    check(run, 'assigned');
    this.setAssigned.run(worker, now, run.id);
    return { ...run, state: 'assigned', worker, assignedAt: now, logSeq: 0 };
  }

  /** `commit`: what the run's source ref resolved to on the worker; `environment`: where it runs. */
  start(run: RunRow, startedAt: number, commit?: string, environment?: Environment): RunRow {
    check(run, 'running');
    this.setRunning.run(startedAt, commit ?? null, run.id, run.attempt);
    if (environment) this.environments.record(run.id, environment);
    return { ...run, state: 'running', startedAt, commit: commit ?? run.commit };
  }

  /** Durable console state: chunks up to `seq`, the file's length, and the masked-secret carry. */
  recordLog(runId: string, seq: number, bytes: number, carry: Buffer | null): void {
    this.setLog.run(seq, bytes, carry !== null && carry.length > 0 ? carry : null, runId);
  }

  /** The file's length after the server wrote to it itself (any carry was written first). */
  recordLogBytes(runId: string, bytes: number): void {
    this.db.prepare('UPDATE runs SET log_bytes = ?, log_carry = NULL WHERE id = ?').run(bytes, runId);
  }

  /** Back to the queue with the same attempt: the worker never started it. */
  unassign(run: RunRow): RunRow {
    check(run, 'queued');
    this.setRequeued.run(run.attempt, null, run.id);
    return requeued(run, run.attempt, null);
  }

  /**
   * An attempt ended. Returns the run as it now is: `queued` when the retry policy gives it another
   * attempt (failed, lost, timeout; not cancelled or error), in its terminal state otherwise.
   */
  finish(run: RunRow, result: RunResult, finishedAt: number, now: number): RunRow {
    const terminal = stateForResult(result);
    this.insertAttempt.run(run.id, run.attempt, run.worker, run.startedAt, finishedAt, JSON.stringify(result));
    const retryable = terminal === 'failed' || terminal === 'lost' || terminal === 'timeout';
    if (retryable && run.attempt < run.maxAttempts && run.cancelReason === null) {
      check(run, 'queued');
      const backoffMs = run.retryBackoffSec * 1000 * 2 ** (run.attempt - 1);
      const notBefore = backoffMs > 0 ? Math.ceil(now + backoffMs) : null;
      this.setRequeued.run(run.attempt + 1, notBefore, run.id);
      return requeued(run, run.attempt + 1, notBefore);
    }
    check(run, terminal);
    this.setFinished.run(terminal, JSON.stringify(result), finishedAt, run.id, run.attempt);
    return { ...run, state: terminal, result, finishedAt };
  }

  /** A queued run is cancelled outright; an active one only gets the reason recorded until its worker stops it. */
  cancelQueued(run: RunRow, reason: string, now: number): RunRow {
    check(run, 'cancelled');
    const result: RunResult = { kind: 'cancelled', reason };
    this.db
      .prepare(`UPDATE runs SET state = 'cancelled', result = ?, cancel_reason = ?, finished_at = ? WHERE id = ?`)
      .run(JSON.stringify(result), reason, now, run.id);
    return { ...run, state: 'cancelled', result, cancelReason: reason, finishedAt: now };
  }

  setCancelReason(runId: string, reason: string): void {
    this.db.prepare('UPDATE runs SET cancel_reason = ? WHERE id = ?').run(reason, runId);
  }

  attempts(runId: string): { attempt: number; worker: string | null; result: RunResult }[] {
    return (
      this.db.prepare('SELECT attempt, worker, result FROM attempts WHERE run_id = ? ORDER BY attempt').all(runId) as {
        attempt: number;
        worker: string | null;
        result: string;
      }[]
    ).map((r) => ({ attempt: r.attempt, worker: r.worker, result: JSON.parse(r.result) as RunResult }));
  }
}

function requeued(run: RunRow, attempt: number, notBefore: number | null): RunRow {
  return { ...run, state: 'queued', attempt, notBefore, worker: null, assignedAt: null, startedAt: null, logSeq: 0 };
}

function check(run: RunRow, to: RunState): void {
  if (!canTransition(run.state, to)) throw new IllegalTransitionError(run.id, run.state, to);
}

/** `runs.trigger` as its CHECK allows it, and the kind that column cannot hold (see migration 17). */
function storedTrigger(t: RunRow['trigger']): { trigger: RawRun['trigger']; triggerKind: RunRow['trigger'] | null } {
  return t === 'manual' || t === 'schedule' || t === 'missed'
    ? { trigger: t, triggerKind: null }
    : { trigger: 'manual', triggerKind: t };
}
