// The server side of the worker protocol, just enough of it for tests: a real
// `ws` server on 127.0.0.1:0 that validates every worker message with the
// protocol schemas (JSON text frames) and output frame decoder (binary frames),
// and keeps a per-run log the way the real server does (append seq N only if it
// is the next one, ack the highest contiguous).
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import {
  decode,
  decodeOutputFrame,
  encode,
  ErrorCode,
  type Finished,
  type Hello,
  HelloSchema,
  type OutputHeader,
  ProtocolError,
  type Reattach,
  type WorkerToServer as JsonWorkerToServer,
  WorkerToServerSchema,
} from '@builder/protocol';
import { WebSocket, WebSocketServer } from 'ws';

/** A decoded output frame: its header fields plus the raw payload. */
export interface Output extends OutputHeader {
  readonly data: Buffer;
}
/** Everything a worker sends after its hello: JSON messages and output frames. */
export type WorkerToServer = JsonWorkerToServer | Output;

export interface RunLog {
  /** Next seq the server would append. */
  expected: number;
  /** Appended (and, when acks flow, acknowledged) output, in order. */
  accepted: Output[];
  /** Output that arrived with seq below `expected`: must never happen after a re-attach. */
  duplicates: Output[];
  finished: Finished[];
  /** Highest seq acknowledged. */
  acked: number;
}

export interface FakeServerOptions {
  /** Reply to a hello (a welcome or an error message). Default: welcome, nothing to re-attach. */
  reply?: (hello: Hello, conn: FakeConnection) => object;
  heartbeatMs?: number;
  /** false: the server never answers pings (a dead peer). */
  autoPong?: boolean;
}

type Listener = () => void;

export class FakeConnection {
  readonly received: WorkerToServer[] = [];
  readonly errors: string[] = [];
  hello: Hello | undefined;
  readonly #listeners = new Set<Listener>();
  constructor(
    readonly ws: WebSocket,
    readonly index: number,
  ) {}

  send(message: object): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(encode(message));
  }
  /** Cut the connection without a close handshake, like a network failure. */
  drop(): void {
    this.ws.terminate();
  }
  outputs(runId: string): Output[] {
    return this.received.filter((m): m is Output => m.type === 'output' && m.runId === runId);
  }
  /** The first message (already received or future) matching `pred`. */
  waitFor<T extends WorkerToServer>(pred: (m: WorkerToServer) => m is T, what?: string, timeoutMs?: number): Promise<T>;
  waitFor(pred: (m: WorkerToServer) => boolean, what?: string, timeoutMs?: number): Promise<WorkerToServer>;
  waitFor(pred: (m: WorkerToServer) => boolean, what = 'message', timeoutMs = 15_000): Promise<WorkerToServer> {
    return waitUntil(() => this.received.find(pred), this.#listeners, `${what} on connection ${this.index}`, timeoutMs);
  }
  notify(): void {
    for (const l of [...this.#listeners]) l();
  }
}

export class FakeServer {
  readonly connections: FakeConnection[] = [];
  readonly logs = new Map<string, RunLog>();
  /** Acknowledge output as it is appended (and finished messages). */
  autoAck = true;
  autoFinishAck = true;
  /** Acknowledge nothing above this seq (the rest is "not durable yet"). */
  ackLimit = Number.POSITIVE_INFINITY;
  /** Called for every message after the fake server processed it. */
  onMessage: ((message: WorkerToServer, conn: FakeConnection) => void) | undefined;
  readonly #listeners = new Set<Listener>();

  private constructor(
    readonly wss: WebSocketServer,
    readonly url: string,
    options: FakeServerOptions,
  ) {
    const heartbeatMs = options.heartbeatMs ?? 1000;
    const reply =
      options.reply ??
      (() => ({
        type: 'welcome',
        version: 1,
        serverVersion: 'fake',
        role: 'worker',
        heartbeatMs,
        leaseMs: heartbeatMs * 3,
        reattach: [],
      }));
    wss.on('connection', (ws) => {
      const conn = new FakeConnection(ws, this.connections.length);
      this.connections.push(conn);
      ws.on('error', () => undefined);
      ws.on('message', (data, isBinary) => {
        try {
          if (!conn.hello) {
            if (isBinary) throw new ProtocolError(ErrorCode.BadMessage, 'binary frame before the hello');
            conn.hello = decode(HelloSchema, data as Buffer);
            conn.send(reply(conn.hello, conn));
          } else {
            let message: WorkerToServer;
            if (isBinary) {
              const { header, payload } = decodeOutputFrame(data as Buffer);
              message = { ...header, data: payload };
            } else {
              message = decode(WorkerToServerSchema, data as Buffer);
            }
            conn.received.push(message);
            this.#apply(message, conn);
            this.onMessage?.(message, conn);
          }
        } catch (err) {
          conn.errors.push(String(err));
        }
        conn.notify();
        this.#notify();
      });
      this.#notify();
    });
  }

  static async start(options: FakeServerOptions = {}): Promise<FakeServer> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws', autoPong: options.autoPong ?? true });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    const { port } = wss.address() as AddressInfo;
    return new FakeServer(wss, `http://127.0.0.1:${port}`, options);
  }

  /** Connection number `index` (0-based) once it has said hello. */
  connection(index: number, timeoutMs = 15_000): Promise<FakeConnection> {
    return waitUntil(
      () => {
        const c = this.connections[index];
        return c?.hello ? c : undefined;
      },
      this.#listeners,
      `connection ${index}`,
      timeoutMs,
    );
  }

  log(runId: string, attempt = 1): RunLog {
    const key = `${runId}/${attempt}`;
    let log = this.logs.get(key);
    if (!log) {
      log = { expected: 1, accepted: [], duplicates: [], finished: [], acked: 0 };
      this.logs.set(key, log);
    }
    return log;
  }

  /** Forget what was appended but not acknowledged, as a restarted server would. */
  truncateToAcked(runId: string, attempt = 1): number {
    const log = this.log(runId, attempt);
    log.accepted = log.accepted.filter((o) => o.seq <= log.acked);
    log.expected = log.acked + 1;
    return log.acked;
  }

  /** Bytes of the appended output of one stream. */
  bytes(runId: string, stream: Output['stream'], attempt = 1): Buffer {
    return Buffer.concat(
      this.log(runId, attempt)
        .accepted.filter((o) => o.stream === stream)
        .map((o) => o.data),
    );
  }

  /** Text of the appended output of one stream (decoded as a whole: a split character stays whole). */
  text(runId: string, stream: Output['stream'], attempt = 1): string {
    return this.bytes(runId, stream, attempt).toString('utf8');
  }

  ack(conn: FakeConnection, runId: string, attempt = 1): void {
    const log = this.log(runId, attempt);
    log.acked = log.expected - 1;
    conn.send({ type: 'ack', runId, attempt, seq: log.acked });
  }

  reattach(runId: string, action: Reattach['action'], ackedSeq: number, attempt = 1): Reattach {
    return { runId, attempt, action, ackedSeq };
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  #apply(message: WorkerToServer, conn: FakeConnection): void {
    if (message.type === 'output') {
      const log = this.log(message.runId, message.attempt);
      if (message.seq < log.expected) log.duplicates.push(message);
      else if (message.seq === log.expected) {
        log.accepted.push(message);
        log.expected++;
        if (this.autoAck && message.seq <= this.ackLimit) {
          log.acked = message.seq;
          conn.send({ type: 'ack', runId: message.runId, attempt: message.attempt, seq: message.seq });
        }
      } else conn.errors.push(`gap: got seq ${message.seq}, expected ${log.expected}`);
    } else if (message.type === 'finished') {
      const log = this.log(message.runId, message.attempt);
      log.finished.push(message);
      if (this.autoFinishAck) conn.send({ type: 'finished-ack', runId: message.runId, attempt: message.attempt });
    }
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l();
  }
}

function waitUntil<T>(
  check: () => T | undefined,
  listeners: Set<Listener>,
  what: string,
  timeoutMs: number,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const now = check();
    if (now !== undefined) return resolve(now);
    const listener = () => {
      const value = check();
      if (value === undefined) return;
      listeners.delete(listener);
      clearTimeout(timer);
      resolve(value);
    };
    const timer = setTimeout(() => {
      listeners.delete(listener);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    listeners.add(listener);
  });
}

/** Poll `check` until it returns something other than undefined/false. */
export async function eventually<T>(check: () => T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Alive means running: a zombie waiting for its reaper counts as dead. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/PID/stat: "pid (comm) S ..."; the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}
