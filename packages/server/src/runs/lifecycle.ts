import {
  ErrorCode,
  ProtocolError,
  formatResult,
  isTerminal,
  type Environment,
  type Finished,
  type RunResult,
  type ServerToWorker,
} from '@builder/protocol';
import type { Clock } from '../clock.ts';
import type { LogStore } from '../console/log-store.ts';
import type { ConnectedWorker, Registry } from '../workers/registry.ts';
import type { Logger } from '../log.ts';
import type { RunEvents } from '../run-events.ts';
import { isStorageFull } from '../storage/full.ts';
import type { StorageOutage } from '../storage/outage.ts';
import type { GroupCommit } from '../store/group-commit.ts';
import type { RunRow } from '../store/rows.ts';
import type { Db } from '../store/db.ts';
import { saveRunReport } from '../store/run-reports.ts';
import type { RunStore } from '../store/runs.ts';
import type { ActiveRuns } from './active.ts';

export interface LifecycleDeps {
  /** For the run reports (summary, usage) that come with `finished`. */
  db: Db;
  commit: GroupCommit;
  runs: RunStore;
  active: ActiveRuns;
  registry: Registry;
  logs: LogStore;
  storage: StorageOutage;
  events: RunEvents;
  clock: Clock;
  logger: Logger;
  leaseMs: number;
}

/**
 * What happens to a run after it was assigned: started, finished, rejected, lost, cancelled.
 * Every method makes its change in the current group-commit batch, emits what happened as a run
 * event (told once the batch is durable: observers, dispatch, alerts and metrics follow from it),
 * and returns the reply the worker gets once that batch is durable (undefined: no reply).
 */
export class Lifecycle {
  constructor(private readonly ctx: LifecycleDeps) {}

  /** A line from the server itself in the run's console, e.g. why an attempt ended. */
  systemLine(runId: string, text: string): void {
    this.writeLog(runId, Buffer.from(`[builder] ${text}\n`));
  }

  /**
   * Append the server's own bytes to a run's console, after whatever output the secret mask still
   * held back (it goes first, as it came first; an unfinished secret at the end of output is not one).
   */
  private writeLog(runId: string, own: Buffer): void {
    const { ctx } = this;
    const mask = ctx.active.get(runId)?.mask;
    const carry = mask?.flush();
    const bytes = carry && carry.length > 0 ? Buffer.concat([carry, own]) : own;
    if (bytes.length === 0) return;
    let end: number;
    try {
      end = ctx.commit.write(() => {
        const written = ctx.logs.append(runId, bytes);
        ctx.runs.recordLogBytes(runId, written);
        ctx.commit.beforeFlush(() => ctx.logs.syncDirty());
        return written;
      });
    } catch (err) {
      if (!isStorageFull(err)) throw err;
      if (mask && carry && carry.length > 0) mask.carry = carry; // still held, still recorded as held
      // the server's own remark is not worth failing the transition it explains
      ctx.storage.enter(err, `console of run ${runId}`);
      ctx.logger.warn('run.line_lost', { run: runId, text: own.toString(), why: 'disk full' });
      return;
    }
    // shown once durable, like worker output (see ConsoleIntake)
    ctx.commit.thenLazily(() => {
      ctx.logs.publish(runId, end);
      ctx.events.emit({ type: 'output', runId, bytes, end });
    });
  }

  started(
    worker: ConnectedWorker,
    runId: string,
    attempt: number,
    startedAt: number,
    commit?: string,
    environment?: Environment,
  ): ServerToWorker | undefined {
    const { ctx } = this;
    const a = ctx.active.get(runId);
    if (!a || a.attempt !== attempt || a.worker !== worker.name) return this.stale(worker, runId, attempt, 'started');
    a.leaseUntil = ctx.clock.now() + ctx.leaseMs;
    const run = ctx.runs.get(runId);
    if (!run || run.state !== 'assigned') return undefined; // a repeated `started`: already running
    const now = ctx.commit.write(() =>
      ctx.runs.start(run, startedAt, commit, environment && { ...environment, worker: worker.name }),
    );
    ctx.events.emit({ type: 'started', run: now });
    return undefined;
  }

  finished(worker: ConnectedWorker, msg: Finished): ServerToWorker | undefined {
    const { ctx } = this;
    // Whichever attempt it was (a stale one too), the worker's job is over and its slot free. A
    // worker refusing because a stale attempt held its slot would otherwise get nothing until it
    // reconnects, while runs wait in the queue.
    if (worker.refusing) {
      worker.refusing = false;
      ctx.events.emit({ type: 'worker-ready', worker: worker.name });
    }
    const a = ctx.active.get(msg.runId);
    if (!a || a.attempt !== msg.attempt || a.worker !== worker.name)
      return this.stale(worker, msg.runId, msg.attempt, 'finished');
    // no answer while the disk is full (not even `resend`: its output is refused too); the worker
    // holds the result and sends it again when asked after the outage (resumeRuns)
    if (ctx.storage.refusing) return undefined;
    if (msg.lastSeq >= a.nextSeq) {
      return { type: 'resend', runId: msg.runId, attempt: msg.attempt, fromSeq: a.nextSeq };
    }
    const run = ctx.runs.get(msg.runId);
    if (!run) return { type: 'finished-ack', runId: msg.runId, attempt: msg.attempt };
    ctx.commit.write(() => saveRunReport(ctx.db, run.id, { summary: msg.summary ?? null, usage: msg.usage ?? null }));
    this.endAttempt(run, msg.result, msg.finishedAt);
    return { type: 'finished-ack', runId: msg.runId, attempt: msg.attempt };
  }

  /**
   * The worker, which has seen the assignment (heartbeat), does not hold this attempt: it never
   * arrived or the worker lost it. Never started: back to the queue, same attempt, not charged.
   * Started: the worker lost a running job, which counts as lost (the retry policy decides).
   */
  reclaim(worker: ConnectedWorker, runId: string): void {
    const { ctx } = this;
    const a = ctx.active.get(runId);
    const run = ctx.runs.get(runId);
    if (!a || !run || a.worker !== worker.name) return;
    const state = run.state === 'assigned' ? 'assigned' : 'running';
    ctx.active.reclaimed[state]++;
    ctx.logger.warn('run.reclaimed', { run: runId, job: run.job, worker: worker.name, attempt: a.attempt, state });
    if (state === 'assigned') {
      this.systemLine(runId, `worker ${worker.name} does not have attempt ${a.attempt}; it goes back to the queue`);
      this.requeue(run, worker);
    } else {
      this.systemLine(runId, `worker ${worker.name} no longer has attempt ${a.attempt}: lost`);
      this.endAttempt(run, { kind: 'lost' }, ctx.clock.now());
    }
    ctx.events.emit({ type: 'reclaimed', run, state });
  }

  /** Back to the queue with the same attempt: the worker never started it. */
  private requeue(run: RunRow, worker: ConnectedWorker): void {
    const { ctx } = this;
    const now = ctx.commit.write(() => ctx.runs.unassign(run));
    ctx.active.delete(run.id);
    worker.runs.delete(run.id);
    ctx.events.emit({ type: 'requeued', run: now });
  }

  /** The worker would not take it: back to the queue, same attempt, and try elsewhere. */
  rejected(worker: ConnectedWorker, runId: string, attempt: number, reason: string): ServerToWorker | undefined {
    const { ctx } = this;
    const a = ctx.active.get(runId);
    if (!a || a.attempt !== attempt || a.worker !== worker.name) {
      this.refusedWrite(worker, runId, attempt, 'rejected');
      return undefined;
    }
    const run = ctx.runs.get(runId);
    if (!run) return undefined;
    ctx.logger.info('run.rejected', { run: runId, worker: worker.name, reason });
    worker.refusing = true;
    this.requeue(run, worker);
    // a rejection is sent once: undone with its batch (disk full), the run would be back on a worker
    // that does not hold it; reconnecting, the worker lists what it holds and re-attach settles it
    ctx.commit.thenLazily(
      () => undefined,
      () => worker.close(1013, 'a rejection could not be stored: reconnect'),
    );
    return undefined;
  }

  /** The lease ran out: the worker is gone (or the attempt was cancelled while it was gone). */
  lose(runId: string, vanished = false): void {
    const { ctx } = this;
    const a = ctx.active.get(runId);
    const run = ctx.runs.get(runId);
    if (!a || !run) return;
    const result: RunResult = a.cancelRequested
      ? { kind: 'cancelled', reason: run.cancelReason ?? 'cancelled while its worker was away' }
      : { kind: 'lost' };
    ctx.logger.warn('run.lost', { run: runId, job: run.job, number: run.number, worker: a.worker, attempt: a.attempt });
    if (!vanished) {
      this.systemLine(
        runId,
        `worker ${a.worker} was not heard from for ${Math.round(ctx.leaseMs / 1000)}s: attempt ${a.attempt} ${formatResult(result)}`,
      );
    }
    this.endAttempt(run, result, ctx.clock.now());
  }

  cancel(run: RunRow, reason: string): void {
    const { ctx } = this;
    if (isTerminal(run.state)) {
      throw new ProtocolError(ErrorCode.Conflict, `run ${run.job}/${run.number} already finished (${run.state})`);
    }
    if (run.state === 'queued') {
      const at = ctx.clock.now();
      const now = ctx.commit.write(() => ctx.runs.cancelQueued(run, reason, at));
      ctx.events.emit({ type: 'ended', run: now, attempt: run, result: now.result!, finishedAt: at, at });
      ctx.commit.then(() => ctx.logs.close(run.id));
      return;
    }
    ctx.commit.write(() => ctx.runs.setCancelReason(run.id, reason));
    const a = ctx.active.get(run.id);
    if (!a) return;
    a.cancelRequested = true;
    const worker = ctx.registry.get(a.worker);
    ctx.commit.then(() => worker?.send({ type: 'cancel', runId: run.id, attempt: a.attempt, reason }));
  }

  /** Record how an attempt ended; the retry policy may queue the next attempt. */
  endAttempt(run: RunRow, result: RunResult, finishedAt: number): void {
    const { ctx } = this;
    const now = ctx.clock.now();
    this.writeLog(run.id, Buffer.alloc(0)); // the attempt's output is over: what the mask held goes to the log
    const next = ctx.commit.write(() => ctx.runs.finish(run, result, finishedAt, now));
    const state = next.state;
    ctx.active.delete(run.id);
    ctx.registry.get(run.worker ?? '')?.runs.delete(run.id);
    const terminal = state !== 'queued';
    if (!terminal) {
      const when = next.notBefore ? ` after ${Math.round((next.notBefore - now) / 1000)}s backoff` : '';
      this.systemLine(
        run.id,
        `attempt ${run.attempt}: ${formatResult(result)}; retrying${when} (attempt ${run.attempt + 1} of ${run.maxAttempts})`,
      );
    }
    ctx.logger.info(terminal ? 'run.finished' : 'run.retry', {
      run: run.id,
      job: run.job,
      number: run.number,
      attempt: run.attempt,
      result: formatResult(result),
      state,
    });
    ctx.events.emit({ type: 'ended', run: next, attempt: run, result, finishedAt, at: now });
    if (terminal) ctx.commit.then(() => ctx.logs.close(run.id));
  }

  /** A message about an attempt this worker does not hold (any more): answer it, change nothing. */
  stale(
    worker: ConnectedWorker,
    runId: string,
    attempt: number,
    kind: 'started' | 'output' | 'finished' | 'heartbeat',
    seq = 0,
  ): ServerToWorker {
    this.refusedWrite(worker, runId, attempt, kind);
    const run = this.ctx.runs.get(runId);
    if (kind === 'finished') return { type: 'finished-ack', runId, attempt };
    if (run && run.attempt === attempt && isTerminal(run.state) && kind === 'output') {
      return { type: 'ack', runId, attempt, seq };
    }
    const why = !run
      ? 'unknown run'
      : run.attempt !== attempt
        ? `stale attempt (current is ${run.attempt})`
        : `run is ${run.state}`;
    return { type: 'cancel', runId, attempt, reason: why };
  }

  /**
   * Logged, never applied. A worker's own stale attempt (fenced after a reconnect) is routine; a
   * write to an attempt another worker holds is not, and says so at warn level.
   */
  private refusedWrite(worker: ConnectedWorker, runId: string, attempt: number, kind: string): void {
    const holder = this.ctx.active.get(runId)?.worker;
    const foreign = holder !== undefined && holder !== worker.name;
    this.ctx.logger[foreign ? 'warn' : 'debug']('run.write_refused', {
      run: runId,
      attempt,
      worker: worker.name,
      kind,
      ...(foreign && { holder }),
    });
  }
}
