import WebSocket, { type RawData } from 'ws';
import {
  ErrorCode,
  Methods,
  ProtocolError,
  RequestSchema,
  decode,
  toProtocolError,
  validate,
  type MethodName,
} from '@builder/protocol';
import type { ClientSession, createHandlers } from '../api/methods.ts';
import type { ObserverSink } from '../console/observers.ts';
import type { Logger } from '../log.ts';
import type { StorageOutage } from '../storage/outage.ts';
import type { GroupCommit } from '../store/group-commit.ts';
import { isStorageFull, storageFullError } from '../storage/full.ts';
import { send } from './send.ts';
import type { PeerSocket } from './socket.ts';

/** One client connection after its hello: requests in, responses (after commit) and events out. */
export interface ClientSessionDeps {
  commit: GroupCommit;
  storage: Pick<StorageOutage, 'check'>;
  observers: { remove(sink: ObserverSink): void };
  logger: Logger;
}

export function startClientSession(
  ctx: ClientSessionDeps,
  handlers: ReturnType<typeof createHandlers>,
  ws: PeerSocket,
  role: 'admin' | 'read',
  readMethods: ReadonlySet<MethodName>,
): {
  onMessage(data: RawData): void;
  onClose(): void;
} {
  let subs = 0;
  const session: ClientSession = {
    sink: {
      send: (event, done) => send(ws, event, done),
      bufferedAmount: () => ws.bufferedAmount,
      get closed() {
        return ws.readyState !== WebSocket.OPEN;
      },
    },
    nextSub: () => ++subs,
  };
  const fail = (id: number | null, err: unknown) => {
    const e =
      err instanceof ProtocolError
        ? err
        : isStorageFull(err)
          ? storageFullError('store this change')
          : toProtocolError(err);
    if (!(err instanceof ProtocolError) && !isStorageFull(err)) {
      ctx.logger.error('api.failed', { error: String((err as Error).stack ?? err) });
    }
    if (id === null) return send(ws, { type: 'error', error: { code: e.code, message: e.message } });
    const answer = () => send(ws, { type: 'response', id, ok: false, error: { code: e.code, message: e.message } });
    // after the batch either way: an error vouches for nothing in it, but must not be left unsent
    ctx.commit.then(answer, answer);
  };
  /** The batch holding the request's change was rolled back (disk full): say so rather than nothing. */
  const undone = (id: number, method: MethodName) => () => {
    const e = storageFullError(WRITES[method] ?? `do ${method}`);
    send(ws, { type: 'response', id, ok: false, error: { code: e.code, message: e.message } });
  };

  return {
    onMessage(data) {
      let req;
      try {
        req = decode(RequestSchema, data as Buffer);
      } catch (err) {
        // answer the request it claims to be, if it has an id, so the caller is not left waiting
        return fail(requestId(data), err);
      }
      try {
        if (role !== 'admin' && !readMethods.has(req.method)) {
          throw new ProtocolError(ErrorCode.Forbidden, `${req.method} needs an admin token; this token is read-only`);
        }
        // every method but the reads writes; none can be durable while the disk is full
        if (!readMethods.has(req.method)) ctx.storage.check(WRITES[req.method] ?? `do ${req.method}`);
        const params = validateParams(req.method, req.params);
        const handler = handlers[req.method] as (
          p: unknown,
          s: ClientSession,
        ) => { result: unknown; afterReply?: () => void };
        const { result, afterReply } = handler(params, session);
        ctx.commit.then(
          () => {
            send(ws, { type: 'response', id: req.id, ok: true, result });
            afterReply?.();
          },
          undone(req.id, req.method),
        );
      } catch (err) {
        fail(req.id, err);
      }
    },
    onClose() {
      ctx.observers.remove(session.sink);
    },
  };
}

/** What a refused write would have done, for the STORAGE_FULL message. */
const WRITES: Partial<Record<MethodName, string>> = {
  execute: 'queue new runs',
  schedule: 'save schedules',
  reschedule: 'change schedules',
  unschedule: 'change schedules',
  cancel: 'record a cancel',
};

function validateParams(method: MethodName, params: unknown): unknown {
  try {
    return validate(Methods[method].params, params ?? {}, `parameters for ${method}`);
  } catch (err) {
    if (err instanceof ProtocolError) throw new ProtocolError(ErrorCode.InvalidArgument, err.message);
    throw err;
  }
}

function requestId(data: RawData): number | null {
  try {
    const v = JSON.parse(String(data)) as { id?: unknown };
    return Number.isSafeInteger(v.id) && (v.id as number) >= 0 ? (v.id as number) : null;
  } catch {
    return null;
  }
}
