import type { RawData } from 'ws';
import {
  ErrorCode,
  ProtocolError,
  toProtocolError,
  WorkerToServerSchema,
  decode,
  decodeOutputFrame,
  type Hello,
  type ServerToWorker,
  type WorkerInfo,
} from '@builder/protocol';
import type { ConnectedWorker } from '../workers/registry.ts';
import type { RunEvents } from '../run-events.ts';
import { attachWorker, detachWorker, type AttachDeps } from '../runs/attach.ts';
import { reconcile } from '../runs/reconcile.ts';
import type { ConsoleIntake } from '../runs/console-intake.ts';
import type { Lifecycle } from '../runs/lifecycle.ts';
import { send, sendError, welcome } from './send.ts';
import type { PeerSocket } from './socket.ts';

export interface WorkerSessionDeps extends AttachDeps {
  events: RunEvents;
  lifecycle: Pick<Lifecycle, 'systemLine' | 'lose' | 'reclaim' | 'stale' | 'started' | 'finished' | 'rejected'>;
  intake: Pick<ConsoleIntake, 'output'>;
  /** For the welcome. */
  version: string;
  heartbeatMs: number;
}

/**
 * One worker connection after its hello: attach, then route its messages into the run lifecycle.
 * JSON text frames go to `onMessage`, binary frames (console output) to `onBinary`.
 */
export function startWorkerSession(
  deps: WorkerSessionDeps,
  ws: PeerSocket,
  hello: Hello & { worker: WorkerInfo },
  version: number,
  role: 'admin' | 'worker',
): {
  onMessage(data: RawData): void;
  onBinary(data: RawData): void;
  onClose(): void;
} {
  const { lifecycle, intake } = deps;
  const ctx = deps;
  const info = hello.worker;
  const now = ctx.clock.now();
  // Nothing reaches the worker before its welcome: whatever this hello's batch sets off (a vanished
  // run lost, a dispatch to the new slots) is held and sent after it, in order. A worker drops
  // messages that come before the welcome, so sending them earlier would lose assignments.
  let welcomed = false;
  const early: ServerToWorker[] = [];
  /** Per run: how many assignments this connection had sent when it sent that run's (reconcile.ts). */
  const assignSeq = new Map<string, number>();
  let assignsSent = 0;
  const deliver = (m: ServerToWorker) => {
    if (m.type === 'assign') assignSeq.set(m.run.runId, ++assignsSent);
    send(ws, m);
  };
  const worker: ConnectedWorker = {
    name: info.name,
    platform: info.platform,
    labels: info.labels,
    capacity: info.capacity,
    executor: info.executor,
    connectedAt: now,
    lastSeenAt: now,
    runs: new Set(),
    refusing: false,
    send: (m: ServerToWorker) => (welcomed ? deliver(m) : early.push(m)),
    close: (code, reason) => ws.close(code, reason),
  };
  const reattach = attachWorker(ctx, lifecycle, worker, info.running);
  ctx.commit.then(
    () => {
      send(ws, welcome(ctx, version, role, reattach));
      welcomed = true;
      for (const m of early.splice(0)) deliver(m);
    },
    // the attach was rolled back (disk full): no welcome; the worker reconnects and tries again
    () => ws.close(1013, 'storage full'),
  );
  // its free slots may take queued runs (assigned once the attach is committed: after the welcome)
  ctx.events.emit({ type: 'worker-ready', worker: worker.name });

  const reply = (r: ServerToWorker | undefined) => {
    if (r) ctx.commit.then(() => worker.send(r));
  };
  const refuse = (err: unknown) => {
    const e = toProtocolError(err, ErrorCode.BadMessage);
    ctx.logger.warn('ws.bad_message', { worker: worker.name, code: e.code, message: e.message });
    sendError(ws, e.code, e.message);
  };
  /** A handler threw: a server bug, not the worker's fault; logged with its stack, answered INTERNAL. */
  const failed = (type: string, err: unknown) => {
    ctx.logger.error('ws.handler_failed', { worker: worker.name, type, error: String((err as Error).stack ?? err) });
    sendError(ws, ErrorCode.Internal, `server failed to handle ${type}: ${(err as Error).message}`);
  };

  return {
    onMessage(data) {
      let msg;
      try {
        msg = decode(WorkerToServerSchema, data as Buffer);
      } catch (err) {
        return refuse(err);
      }
      worker.lastSeenAt = ctx.clock.now();
      try {
        switch (msg.type) {
          case 'heartbeat':
            // A replaced connection's late heartbeat says what the worker held back then, and knows
            // nothing of what the new connection assigned since: judged by it, those would be reclaimed.
            if (ctx.registry.get(worker.name) !== worker) return;
            for (const r of reconcile(ctx, lifecycle, worker, msg, assignSeq)) reply(r);
            return;
          case 'started':
            return reply(lifecycle.started(worker, msg.runId, msg.attempt, msg.startedAt, msg.commit, msg.environment));
          case 'finished':
            return reply(lifecycle.finished(worker, msg));
          case 'rejected':
            return reply(lifecycle.rejected(worker, msg.runId, msg.attempt, msg.reason));
          default: {
            const never: never = msg;
            throw new Error(`unhandled message ${JSON.stringify(never)}`);
          }
        }
      } catch (err) {
        failed(msg.type, err);
      }
    },
    /** A console chunk: a binary output frame. */
    onBinary(data) {
      let frame;
      try {
        frame = decodeOutputFrame(data);
      } catch (err) {
        return refuse(err);
      }
      worker.lastSeenAt = ctx.clock.now();
      try {
        reply(intake.output(worker, frame.header, frame.payload));
      } catch (err) {
        failed('output', err);
      }
    },
    onClose() {
      detachWorker(ctx, worker);
    },
  };
}
