import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData } from 'ws';
import {
  ErrorCode,
  HelloSchema,
  LIMITS,
  ProtocolError,
  toProtocolError,
  READ_METHODS,
  decode,
  negotiateVersion,
  type WorkerInfo,
} from '@builder/protocol';
import { bulkBuffers, SERVER_HEADER } from '@builder/protocol/net';
import type { createHandlers } from '../api/methods.ts';
import type { Db } from '../store/db.ts';
import { grantOfToken, mayActAsWorker, workerRefusal } from '../store/tokens.ts';
import { startClientSession, type ClientSessionDeps } from './client-session.ts';
import { send, sendError, welcome } from './send.ts';
import type { PeerSocket } from './socket.ts';
import { startWorkerSession, type WorkerSessionDeps } from './worker-session.ts';

const HELLO_TIMEOUT_MS = 10_000;

export interface HubDeps extends WorkerSessionDeps, ClientSessionDeps {
  /** Where the tokens are. */
  db: Db;
  handlers: ReturnType<typeof createHandlers>;
  /** Ping at least this often whatever the heartbeat, so proxies never see an idle connection. */
  keepaliveMs?: number;
}

/**
 * The WebSocket endpoint: every connection must open with a valid hello (version, token, role)
 * before anything else is read; invalid messages get an error with a code and never reach the logic.
 */
export class Hub {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: LIMITS.maxMessageBytes,
    perMessageDeflate: false,
  });
  private readonly liveness: NodeJS.Timeout;
  /** Every open connection, and whether it answered the last ping. */
  private readonly alive = new Map<PeerSocket, boolean>();

  constructor(private readonly deps: HubDeps) {
    this.wss.on('connection', (ws) => this.accept(ws));
    const intervalMs = Math.min(deps.heartbeatMs, deps.keepaliveMs ?? deps.heartbeatMs);
    // ping every client; one that did not answer the previous ping is dead
    this.liveness = setInterval(() => {
      for (const [ws, alive] of this.alive) {
        if (!alive) {
          ws.terminate();
          continue;
        }
        this.alive.set(ws, false);
        ws.ping();
      }
    }, intervalMs);
    this.liveness.unref();
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/ws') {
      socket.end(`HTTP/1.1 404 Not Found\r\n${SERVER_HEADER}: 1\r\nConnection: close\r\n\r\n`);
      return;
    }
    socket.on('error', destroySocket);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
  }

  close(): void {
    clearInterval(this.liveness);
    for (const ws of this.alive.keys()) ws.terminate();
    this.wss.close();
  }

  /** As a crash leaves it: no more pings, nothing sent or closed (the kernel, or a simulation, cuts the sockets). */
  abandon(): void {
    clearInterval(this.liveness);
    this.alive.clear();
  }

  get connections(): number {
    return this.alive.size;
  }

  /** A new WebSocket connection (from the HTTP upgrade, or simulated): it must open with a hello. */
  accept(ws: PeerSocket): void {
    const ctx = this.deps;
    this.alive.set(ws, true);
    ws.on('pong', () => {
      if (this.alive.has(ws)) this.alive.set(ws, true);
    });
    ws.on('error', (err) => ctx.logger.warn('ws.error', { error: err.message, code: (err as { code?: string }).code }));
    /** After the hello; only a worker session takes binary frames (console output). */
    let session: { onMessage(d: RawData): void; onBinary?(d: RawData): void; onClose(): void } | undefined;
    const helloTimer = setTimeout(() => {
      sendError(ws, ErrorCode.HelloRequired, `no hello within ${HELLO_TIMEOUT_MS / 1000}s`);
      ws.close(1008, 'hello required');
    }, HELLO_TIMEOUT_MS);
    ws.on('close', () => {
      this.alive.delete(ws);
      clearTimeout(helloTimer);
      session?.onClose();
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        // console output, read and dropped in bulk: its buffers are collected young
        bulkBuffers.add(rawLength(data));
        if (session?.onBinary) return session.onBinary(data);
        // Before the hello, or on a client connection: the protocol is JSON text.
        sendError(ws, ErrorCode.BadMessage, 'binary frames are only console output from a worker: send JSON text');
        return;
      }
      if (session) return session.onMessage(data);
      clearTimeout(helloTimer);
      try {
        session = this.hello(ws, data);
      } catch (err) {
        const e = toProtocolError(err);
        ctx.logger.warn('ws.hello_refused', { code: e.code, message: e.message, worker: workerName(data) });
        sendError(ws, e.code, e.message);
        ws.close(1008, e.code);
      }
    });
  }

  private hello(ws: PeerSocket, data: RawData) {
    const ctx = this.deps;
    const hello = decode(HelloSchema, data as Buffer);
    const version = negotiateVersion(hello.versions);
    if (version === undefined) {
      throw new ProtocolError(
        ErrorCode.UnsupportedVersion,
        `protocol versions ${hello.versions.join(', ')} not supported: upgrade builder`,
      );
    }
    const grant = grantOfToken(ctx.db, hello.token);
    if (!grant)
      throw new ProtocolError(ErrorCode.Unauthorized, 'unknown token: create one with builder-server token create');
    const role = grant.role;
    if (hello.role === 'worker') {
      const name = hello.worker!.name;
      // a worker is who its token says: names are public (website), so a name alone proves nothing
      if (!mayActAsWorker(grant, name)) throw new ProtocolError(ErrorCode.Forbidden, workerRefusal(grant, name));
      // attaching is a write; the worker retries its hello with backoff and resumes once there is room
      ctx.storage.check('take worker connections');
      return startWorkerSession(
        this.deps,
        ws,
        hello as typeof hello & { worker: WorkerInfo },
        version,
        role as 'admin' | 'worker',
      );
    }
    if (role === 'worker') {
      throw new ProtocolError(
        ErrorCode.Forbidden,
        'a worker token can only connect workers: use an admin or read token',
      );
    }
    const s = startClientSession(ctx, ctx.handlers, ws, role, READ_METHODS);
    send(ws, welcome(ctx, version, role, []));
    return s;
  }
}

/**
 * A socket's error listener for as long as it is connected. Not a closure in `upgrade`: that would
 * share its scope with the one given to handleUpgrade, and so keep the upgrade request (headers and
 * all) alive with every connection.
 */
function destroySocket(this: Duplex): void {
  this.destroy();
}

/** The worker name a refused hello claimed, for the log line (undefined if it is not there). */
function workerName(data: RawData): string | undefined {
  try {
    const name = (JSON.parse(String(data)) as { worker?: { name?: unknown } }).worker?.name;
    return typeof name === 'string' ? name.slice(0, 64) : undefined;
  } catch {
    return undefined;
  }
}

/** Bytes in a message as ws hands it over (a Buffer unless binaryType was changed). */
function rawLength(data: RawData): number {
  return Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
}
