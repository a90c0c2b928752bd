import type { OutputHeader, ServerToWorker } from '@builder/protocol';
import type { Clock } from '../clock.ts';
import type { LogStore } from '../console/log-store.ts';
import type { ConnectedWorker } from '../workers/registry.ts';
import type { RunEvents } from '../run-events.ts';
import { isStorageFull } from '../storage/full.ts';
import type { StorageOutage } from '../storage/outage.ts';
import type { GroupCommit } from '../store/group-commit.ts';
import type { JobStore } from '../store/jobs.ts';
import type { RunStore } from '../store/runs.ts';
import type { SecretStore } from '../store/secrets.ts';
import type { ActiveRuns } from './active.ts';
import type { Lifecycle } from './lifecycle.ts';
import { maskOf } from './masking.ts';

export interface ConsoleIntakeDeps {
  commit: GroupCommit;
  runs: Pick<RunStore, 'recordLog'>;
  jobs: Pick<JobStore, 'getById'>;
  secrets: Pick<SecretStore, 'valuesFor'>;
  active: ActiveRuns;
  logs: LogStore;
  storage: StorageOutage;
  events: RunEvents;
  clock: Clock;
  leaseMs: number;
  /** Answers output for an attempt the worker does not hold. */
  lifecycle: Pick<Lifecycle, 'stale'>;
}

interface PendingAck {
  worker: ConnectedWorker;
  attempt: number;
  seq: number;
}

/**
 * Console chunks from workers (binary output frames: a header and the raw bytes). A chunk is
 * appended only if it is the next one expected; the file is fdatasynced and the durable (seq,
 * length) recorded in the batch's transaction; then one ack per run and batch goes out with the
 * highest durable seq, and observers get the batch's bytes. If the batch is rolled back nothing of
 * that happens, and resyncRuns cuts the file and nextSeq back, so the worker's resend is accepted.
 */
export class ConsoleIntake {
  private pending = new Map<string, PendingAck>();
  private durable = new Map<string, PendingAck>();
  /** The batch's chunks, published (readers, output events) only once it commits: nobody sees what may be undone. */
  private unpublished: { runId: string; buf: Buffer | undefined; end: number }[] = [];
  /** Whether anyone listens to output events as they come (else their bytes are not kept). */
  private readonly watching: (runId: string) => boolean;

  constructor(
    private readonly ctx: ConsoleIntakeDeps,
    watching: (runId: string) => boolean = () => true,
  ) {
    this.watching = watching;
  }

  output(worker: ConnectedWorker, msg: OutputHeader, payload: Buffer): ServerToWorker | undefined {
    const { ctx } = this;
    const a = ctx.active.get(msg.runId);
    if (!a || a.attempt !== msg.attempt || a.worker !== worker.name) {
      return ctx.lifecycle.stale(worker, msg.runId, msg.attempt, 'output', msg.seq);
    }
    a.leaseUntil = ctx.clock.now() + ctx.leaseMs;
    // While the disk is full nothing is appended or acknowledged: the worker keeps every chunk
    // and is asked to resend from the durable seq when the outage ends (resumeRuns in runs/resync.ts).
    // Answering `resend` now instead would only make it send the same bytes in a loop.
    if (ctx.storage.refusing) return undefined;
    if (msg.seq < a.nextSeq) {
      // a resend of something already durable: acknowledge again, append nothing
      return this.pending.has(msg.runId)
        ? undefined
        : { type: 'ack', runId: msg.runId, attempt: msg.attempt, seq: a.nextSeq - 1 };
    }
    if (msg.seq > a.nextSeq) {
      return { type: 'resend', runId: msg.runId, attempt: msg.attempt, fromSeq: a.nextSeq };
    }
    const mask = maskOf(ctx, a);
    const carried = mask?.carry;
    const bytes = mask?.push(payload) ?? payload;
    let end: number;
    try {
      end = ctx.logs.append(msg.runId, bytes);
    } catch (err) {
      if (!isStorageFull(err)) throw err;
      // not appended, not counted, not acknowledged: the same seq is expected again
      if (mask && carried) mask.carry = carried;
      ctx.storage.enter(err, `console of run ${msg.runId}`);
      return undefined;
    }
    a.nextSeq++;
    // the bytes are kept only for someone watching; one who starts later reads them from the file
    this.unpublished.push({ runId: msg.runId, buf: this.watching(msg.runId) ? bytes : undefined, end });
    if (this.pending.size === 0) {
      // first output of this batch: open it and arrange the durable bookkeeping at its end
      ctx.commit.write(() => undefined);
      ctx.commit.beforeFlush(() => this.makeDurable());
      // registered now, so acks leave before anything this batch answers later (e.g. finished-ack)
      ctx.commit.thenLazily(
        () => this.sendAcks(),
        // rolled back: no ack leaves, and the next batch starts its bookkeeping afresh
        () => {
          this.pending = new Map();
          this.durable = new Map();
          this.unpublished = [];
        },
      );
    }
    this.pending.set(msg.runId, { worker, attempt: msg.attempt, seq: msg.seq });
    return undefined;
  }

  private makeDurable(): void {
    const { ctx } = this;
    ctx.logs.syncDirty();
    this.durable = this.pending;
    this.pending = new Map();
    for (const [runId, p] of this.durable) {
      const carry = ctx.active.get(runId)?.mask?.carry ?? null;
      ctx.runs.recordLog(runId, p.seq, ctx.logs.written(runId), carry);
    }
  }

  private sendAcks(): void {
    const { ctx } = this;
    for (const c of this.unpublished) {
      ctx.logs.publish(c.runId, c.end);
      ctx.events.emit({ type: 'output', runId: c.runId, bytes: c.buf, end: c.end });
    }
    this.unpublished = [];
    const batch = this.durable;
    this.durable = new Map();
    for (const [runId, p] of batch) p.worker.send({ type: 'ack', runId, attempt: p.attempt, seq: p.seq });
  }
}
