import {
  ErrorCode,
  encode,
  encodeOutputFrameInPlace,
  type Hello,
  type OutputHeader,
  PROTOCOL_VERSIONS,
  type ServerToWorker,
  type Welcome,
  type WorkerInfo,
  type WorkerToServer,
  type Logger,
} from '@builder/protocol';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { bulkBuffers, certificateProblem, foreignAnswer, type Trust } from '@builder/protocol/net';
import WebSocket, { type RawData } from 'ws';
import { ServerRefusedError, UntrustedServerError } from './errors.ts';
import type { Link } from './runner.ts';
import { decodeServerMessage } from './wire.ts';

/** Hello errors that retrying cannot fix: stop instead of hammering the server. */
const FATAL_HELLO_ERRORS: ReadonlySet<string> = new Set([
  ErrorCode.Unauthorized,
  ErrorCode.Forbidden,
  ErrorCode.UnsupportedVersion,
]);
/** Liveness: terminate when this many heartbeat intervals passed without a pong. */
const MAX_MISSED_PONGS = 2;

export interface ConnectionOptions {
  /** ws(s)://HOST/ws */
  readonly url: string;
  readonly token: string;
  readonly maxPayload: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  /** Upgrade plus hello → welcome must finish within this. */
  readonly helloTimeoutMs: number;
  /** Ping the server at least this often, whatever the heartbeat, so no proxy sees an idle connection. */
  readonly keepaliveMs?: number;
  /** Extra CAs for an https:// remote (`--ca`). */
  readonly trust?: Trust;
}

export interface ConnectionHandler {
  /** Who we are, computed at every (re)connect: `running` changes over time. */
  workerInfo(): WorkerInfo;
  onWelcome(welcome: Welcome): void;
  onMessage(message: ServerToWorker): void;
  onDisconnect(): void;
  /** The server refused us for good (or, at the first connection, its certificate); no retry. */
  onRefused(err: ServerRefusedError | UntrustedServerError): void;
}

/** The part of a `ws` client WebSocket the connection uses (a simulated network provides its own). */
export interface ServerSocket {
  readonly readyState: number;
  send(data: string | Buffer): void;
  send(data: string | Buffer, options: { binary: boolean }): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  ping(): void;
  on(event: 'open', listener: () => void): this;
  on(event: 'message', listener: (data: RawData, isBinary: boolean) => void): this;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'pong', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'unexpected-response', listener: (req: ClientRequest, res: IncomingMessage) => void): this;
  once(event: 'close', listener: (code: number, reason: Buffer) => void): this;
}

export type Connect = (url: string, options: WebSocket.ClientOptions) => ServerSocket;

export interface ConnectionDeps {
  readonly options: ConnectionOptions;
  readonly handler: ConnectionHandler;
  readonly log: Logger;
  readonly random?: () => number;
  /** Opens the socket; default: a real WebSocket. */
  readonly connect?: Connect;
}

const connectWebSocket: Connect = (url, options) => new WebSocket(url, options);

/**
 * The worker's one connection to the server, kept up for as long as the worker
 * runs: hello/welcome, heartbeats, ping liveness, reconnect with backoff + jitter.
 */
export class Connection implements Link {
  readonly #o: ConnectionOptions;
  readonly #handler: ConnectionHandler;
  readonly #log: Logger;
  readonly #random: () => number;
  readonly #open: Connect;
  #ws: ServerSocket | undefined;
  #ready = false;
  #stopped = false;
  #failures = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #helloTimer: NodeJS.Timeout | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  /** Welcomed at least once: a certificate refused later (a renewal gone wrong) is waited out. */
  #everWelcomed = false;
  /** `assign` messages received on this connection, reported with each heartbeat. */
  #assignsSeen = 0;
  #missedPongs = 0;

  constructor(deps: ConnectionDeps) {
    this.#o = deps.options;
    this.#handler = deps.handler;
    this.#log = deps.log;
    this.#random = deps.random ?? Math.random;
    this.#open = deps.connect ?? connectWebSocket;
  }

  /** Welcomed and open: messages sent now reach the server (unless the connection dies). */
  get ready(): boolean {
    return this.#ready;
  }

  start(): void {
    this.#connect();
  }

  send(message: WorkerToServer): boolean {
    const ws = this.#ws;
    if (!this.#ready || !ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(encode(message));
    return true;
  }

  sendOutput(header: OutputHeader, payload: Buffer, headroom = 0): boolean {
    const ws = this.#ws;
    if (!this.#ready || !ws || ws.readyState !== WebSocket.OPEN) return false;
    // ws masks a copy (never our buffer in place), so a chunk held for a resend stays as it is
    ws.send(encodeOutputFrameInPlace(header, payload, headroom), { binary: true });
    // that copy, and the job's output as read, are garbage once sent
    bulkBuffers.add(payload.length);
    return true;
  }

  /** Stop for good: close the socket politely, give up after a second. */
  async close(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    const ws = this.#ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => ws.terminate(), 1000);
      ws.once('close', () => {
        clearTimeout(force);
        resolve();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000, 'worker stopping');
    });
  }

  #connect(): void {
    if (this.#stopped) return;
    const ws = this.#open(this.#o.url, {
      maxPayload: this.#o.maxPayload,
      handshakeTimeout: this.#o.helloTimeoutMs,
      // Console data is sent once and acknowledged; compression costs more CPU than loopback/LAN saves.
      perMessageDeflate: false,
      ...(this.#o.trust?.ca && { ca: [...this.#o.trust.ca] }),
    });
    this.#ws = ws;
    this.#missedPongs = 0;
    ws.on('error', (err) => this.#error(err));
    ws.on('unexpected-response', (_req, res) => {
      // a proxy's answer (502 while the server restarts, a refused upgrade): one line, then retry
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.length < 16 && chunks.push(chunk));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const body = Buffer.concat(chunks).toString('utf8');
        this.#log.warn('connection.refused_upgrade', {
          url: this.#o.url,
          status,
          error:
            foreignAnswer(status, res.headers, body, { websocket: true }) ??
            `the server answered HTTP ${status} instead of a WebSocket upgrade`,
          hint: 'will retry',
        });
        ws.terminate();
      });
    });
    ws.on('open', () => {
      this.#helloTimer = setTimeout(() => {
        this.#log.warn('connection.welcome_timeout', { timeoutMs: this.#o.helloTimeoutMs, hint: 'reconnecting' });
        ws.terminate();
      }, this.#o.helloTimeoutMs);
      const hello: Hello = {
        type: 'hello',
        versions: [...PROTOCOL_VERSIONS],
        role: 'worker',
        token: this.#o.token,
        worker: this.#handler.workerInfo(),
      };
      ws.send(encode(hello));
    });
    ws.on('message', (data, isBinary) => this.#receive(ws, data, isBinary));
    ws.on('pong', () => {
      this.#missedPongs = 0;
    });
    ws.on('close', (code, reason) => this.#closed(ws, code, reason.toString()));
  }

  /**
   * A refused certificate at the first connection is a mistake in the setup: stop and say how to
   * trust the CA. Once connected before, it is a renewal gone wrong on the server: the jobs keep
   * running, the worker says why at every attempt and connects as soon as the certificate verifies.
   */
  #error(err: Error): void {
    const certificate = certificateProblem(err, this.#o.url);
    if (certificate === undefined) {
      this.#log.warn('connection.error', { url: this.#o.url, error: err });
      return;
    }
    if (!this.#everWelcomed) {
      this.#stopped = true;
      this.#handler.onRefused(new UntrustedServerError(certificate));
      return;
    }
    this.#log.error('connection.certificate_refused', { url: this.#o.url, error: certificate, hint: 'will retry' });
  }

  #receive(ws: ServerSocket, data: RawData, isBinary: boolean): void {
    let message;
    try {
      message = decodeServerMessage(data, isBinary);
    } catch (err) {
      this.#log.warn('connection.invalid_message_ignored', { error: err });
      return;
    }
    if (message.type === 'error') {
      const { code, message: text } = message.error;
      if (this.#ready) {
        this.#log.warn('connection.protocol_error', { code, error: text });
        return;
      }
      if (FATAL_HELLO_ERRORS.has(code)) {
        this.#stopped = true;
        this.#handler.onRefused(new ServerRefusedError(code, text));
      } else {
        this.#log.warn('connection.hello_refused', { code, error: text, hint: 'will retry' });
      }
      ws.close();
      return;
    }
    if (message.type === 'welcome') {
      if (this.#ready) this.#log.warn('connection.second_welcome_ignored');
      else this.#welcome(ws, message);
      return;
    }
    if (!this.#ready) {
      this.#log.warn('connection.message_before_welcome_ignored', { type: message.type });
      return;
    }
    if (message.type === 'assign') this.#assignsSeen++;
    this.#handler.onMessage(message);
  }

  #welcome(ws: ServerSocket, welcome: Welcome): void {
    clearTimeout(this.#helloTimer);
    if (!(PROTOCOL_VERSIONS as readonly number[]).includes(welcome.version)) {
      this.#stopped = true;
      this.#handler.onRefused(
        new ServerRefusedError(ErrorCode.UnsupportedVersion, `server chose protocol version ${welcome.version}`),
      );
      ws.close();
      return;
    }
    this.#failures = 0;
    this.#ready = true;
    this.#everWelcomed = true;
    this.#assignsSeen = 0;
    this.#log.info('connection.connected', {
      url: this.#o.url,
      heartbeatMs: welcome.heartbeatMs,
      reattach: welcome.reattach.length,
    });
    // pings on their own timer: a long lease means rare heartbeats, but a proxy cuts idle connections
    this.#pingTimer = setInterval(
      () => {
        if (this.#missedPongs >= MAX_MISSED_PONGS) {
          this.#log.warn('connection.pings_unanswered', { missed: this.#missedPongs, hint: 'reconnecting' });
          ws.terminate();
          return;
        }
        this.#missedPongs++;
        ws.ping();
      },
      Math.min(welcome.heartbeatMs, this.#o.keepaliveMs ?? welcome.heartbeatMs),
    );
    this.#heartbeatTimer = setInterval(() => {
      const running = this.#handler.workerInfo().running.map(({ runId, attempt }) => ({ runId, attempt }));
      this.send({ type: 'heartbeat', running, assignsSeen: this.#assignsSeen });
    }, welcome.heartbeatMs);
    this.#handler.onWelcome(welcome);
  }

  #closed(ws: ServerSocket, code: number, reason: string): void {
    if (ws !== this.#ws) return;
    this.#ws = undefined;
    clearTimeout(this.#helloTimer);
    clearInterval(this.#heartbeatTimer);
    clearInterval(this.#pingTimer);
    const wasReady = this.#ready;
    this.#ready = false;
    if (wasReady) {
      if (this.#stopped) this.#log.info('connection.closed', { code, reason });
      else this.#log.warn('connection.closed', { code, reason });
      this.#handler.onDisconnect();
    }
    if (this.#stopped) return;
    const ceiling = Math.min(this.#o.reconnectMaxMs, this.#o.reconnectMinMs * 2 ** this.#failures);
    this.#failures++;
    // "Equal jitter": never hammer, never synchronise with the other workers.
    const delay = ceiling / 2 + (this.#random() * ceiling) / 2;
    this.#log.info('connection.reconnecting', { inMs: Math.round(delay), failures: this.#failures });
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }
}
