import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { certificateProblem, foreignAnswer, type Trust } from '@builder/protocol/net';
import {
  encode,
  ErrorCode,
  LIMITS,
  Methods,
  PROTOCOL_VERSIONS,
  ProtocolError,
  validate,
  type MethodName,
  type MethodParamsInput,
  type MethodResult,
  type ObserveEvent,
  type RunView,
  type Welcome,
} from '@builder/protocol';
import { BadServerMessageError, ConnectionError, describeSocketError, ServerError } from './errors.ts';
import { parseServerMessage, type ServerMessage } from './messages.ts';
import { webSocketUrl } from './remote.ts';

export interface ConnectOptions {
  /** Server URL, `http://HOST:PORT` (the WebSocket is at `/ws`). */
  remote: string;
  token: string;
  /** Time allowed for TCP + WebSocket upgrade + hello/welcome. */
  handshakeTimeoutMs?: number;
  /** A ping goes out this often; no pong before the next one ends the connection. 0: never. */
  pingIntervalMs?: number;
  /** Extra CAs for an https:// remote (`--ca`). */
  trust?: Trust;
}

export interface Subscription {
  sub: number;
  /** The run as it was when the subscription started. */
  run: RunView;
}

type CloseListener = (error: ConnectionError) => void;
/** Gets each event of a subscription, with the subscription it belongs to. */
export type EventListener = (event: ObserveEvent, subscription: Subscription) => void;

interface Pending {
  method: MethodName;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  /** Runs synchronously when the result arrives, before any later message is handled. */
  onResult?: (result: unknown) => void;
}

/** The first 64 KiB of a body: enough to tell a proxy's page from builder's answer. */
function readSome(res: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => resolve(Buffer.concat(chunks).toString('utf8'));
    res.on('data', (chunk: Buffer) => {
      if (size < 65536) chunks.push(chunk);
      size += chunk.length;
    });
    res.on('end', done);
    res.on('error', done);
    res.on('close', done);
  });
}

/**
 * One authenticated client connection: hello/welcome, then typed requests and
 * observe events. Everything from the network is validated against the protocol schemas.
 */
export class Connection {
  readonly remote: string;
  readonly #ws: WebSocket;
  readonly #pending = new Map<number, Pending>();
  readonly #subs = new Map<number, { subscription: Subscription; onEvent: EventListener }>();
  readonly #closeListeners = new Set<CloseListener>();
  #nextId = 1;
  #welcome: Welcome | undefined;
  #closeError: ConnectionError | undefined;
  #alive = true;
  #closedByUs = false;
  #pingTimer: NodeJS.Timeout | undefined;

  private constructor(ws: WebSocket, remote: string) {
    this.#ws = ws;
    this.remote = remote;
  }

  /** Connect, say hello and wait for the welcome. Rejects with ConnectionError or ServerError. */
  static open(options: ConnectOptions): Promise<Connection> {
    let url: string;
    try {
      url = webSocketUrl(options.remote);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const timeoutMs = options.handshakeTimeoutMs ?? 10_000;
    const ws = new WebSocket(url, {
      maxPayload: LIMITS.maxMessageBytes,
      handshakeTimeout: timeoutMs,
      ...(options.trust?.ca && { ca: [...options.trust.ca] }),
    });
    const conn = new Connection(ws, options.remote);
    return new Promise<Connection>((resolve, reject) => {
      let settled = false;
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.terminate();
        reject(error);
      };
      const timer = setTimeout(
        () => fail(new ConnectionError('timeout', `no welcome from ${options.remote} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      ws.on('error', (error: Error) => {
        conn.#closeError ??= new ConnectionError('closed', `connection to ${options.remote} failed: ${error.message}`);
        const certificate = certificateProblem(error, options.remote);
        if (certificate !== undefined) fail(new ConnectionError('certificate', certificate));
        else
          fail(
            new ConnectionError('unreachable', `cannot connect to ${options.remote}: ${describeSocketError(error)}`),
          );
      });
      // not an upgrade: a proxy's error page, or a server that is not builder's. Said in one line.
      ws.on('unexpected-response', (_req, res: IncomingMessage) => {
        readSome(res).then((body) => {
          const status = res.statusCode ?? 0;
          const foreign = foreignAnswer(status, res.headers, body, { websocket: true });
          const message = `cannot connect to ${options.remote}: ${foreign ?? `the server answered HTTP ${status} instead of a WebSocket upgrade`}`;
          // a proxy whose server is away (restarting) answers 502-504: that passes
          fail(new ConnectionError(status >= 502 && status <= 504 ? 'unreachable' : 'proxy', message));
        }, fail);
      });
      ws.on('open', () => {
        ws.send(encode({ type: 'hello', versions: [...PROTOCOL_VERSIONS], role: 'client', token: options.token }));
      });
      ws.on('close', (code: number, reason: Buffer) => {
        const why = reason.length > 0 ? `: ${reason.toString('utf8')}` : ` (code ${code})`;
        const error = conn.#closeError ?? new ConnectionError('closed', `connection to ${options.remote} closed${why}`);
        fail(new ConnectionError(error.kind, `${error.message} before the welcome`));
        conn.#onClose(error);
      });
      ws.on('pong', () => {
        conn.#alive = true;
      });
      ws.on('message', (raw: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
        let message: ServerMessage;
        try {
          message = parseServerMessage(raw, isBinary);
        } catch (error) {
          if (!conn.#welcome) fail(error as Error);
          else conn.#abort(error as Error);
          return;
        }
        if (conn.#welcome) {
          conn.#onMessage(message);
        } else if (message.type === 'welcome') {
          conn.#welcome = message;
          settled = true;
          clearTimeout(timer);
          conn.#startPing(options.pingIntervalMs ?? 15_000);
          resolve(conn);
        } else if (message.type === 'error') {
          fail(new ServerError(message.error.code, message.error.message));
        } else {
          fail(new BadServerMessageError(`expected a welcome, the server sent a ${message.type}`));
        }
      });
    });
  }

  get welcome(): Welcome {
    if (!this.#welcome) throw new Error('not connected');
    return this.#welcome;
  }

  get isOpen(): boolean {
    return this.#closeError === undefined && this.#ws.readyState === WebSocket.OPEN;
  }

  /** Call a method; params are checked against the protocol before they are sent. */
  call<M extends MethodName>(method: M, params: MethodParamsInput<M>): Promise<MethodResult<M>> {
    return this.#request(method, params) as Promise<MethodResult<M>>;
  }

  /**
   * Subscribe to a run. `onEvent` is registered before any event of the subscription can
   * be handled, so none is missed; the console (if asked) is replayed from the start.
   */
  observe(params: MethodParamsInput<'observe'>, onEvent: EventListener): Promise<Subscription> {
    return this.#request('observe', params, (result) => {
      const subscription = result as Subscription;
      this.#subs.set(subscription.sub, { subscription, onEvent });
    }) as Promise<Subscription>;
  }

  async unobserve(sub: number): Promise<void> {
    this.#subs.delete(sub);
    if (this.isOpen) await this.call('unobserve', { sub });
  }

  /** Called once when the connection ends for any reason other than `close()`. */
  onClose(listener: CloseListener): () => void {
    if (this.#closeError) {
      listener(this.#closeError);
      return () => {};
    }
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /** Close politely; pending calls are rejected. Resolves when the socket is closed. */
  close(): Promise<void> {
    this.#closedByUs = true;
    this.#closeError ??= new ConnectionError('closed', 'connection closed by the client');
    if (this.#ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const force = setTimeout(() => this.#ws.terminate(), 1000);
      this.#ws.once('close', () => {
        clearTimeout(force);
        resolve();
      });
      if (this.#ws.readyState === WebSocket.CONNECTING) this.#ws.terminate();
      else this.#ws.close(1000);
    });
  }

  #request(method: MethodName, params: unknown, onResult?: (result: unknown) => void): Promise<unknown> {
    try {
      validate(Methods[method].params, params, `${method} parameters`);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    if (this.#closeError) return Promise.reject(this.#closeError);
    const id = this.#nextId++;
    const text = encode({ type: 'request', id, method, params });
    if (Buffer.byteLength(text) > LIMITS.maxMessageBytes) {
      return Promise.reject(
        new ProtocolError(
          ErrorCode.MessageTooLarge,
          `the ${method} request is larger than ${LIMITS.maxMessageBytes} bytes`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { method, resolve, reject, ...(onResult ? { onResult } : {}) });
      this.#ws.send(text, (error) => {
        if (error) this.#abort(new ConnectionError('closed', `cannot send to ${this.remote}: ${error.message}`));
      });
    });
  }

  #onMessage(message: ServerMessage): void {
    switch (message.type) {
      case 'response': {
        const pending = this.#pending.get(message.id);
        if (!pending) return; // an answer to a call that already failed locally
        this.#pending.delete(message.id);
        if (!message.ok) {
          pending.reject(new ServerError(message.error.code, message.error.message));
          return;
        }
        let result: unknown;
        try {
          result = validate(Methods[pending.method].result, message.result, `${pending.method} result`);
        } catch (error) {
          pending.reject(new BadServerMessageError(`the server sent an ${(error as Error).message}`));
          return;
        }
        pending.onResult?.(result);
        pending.resolve(result);
        return;
      }
      case 'event': {
        const entry = this.#subs.get(message.sub);
        if (!entry) return;
        // the server ends a subscription with its `end` event
        if (message.event.kind === 'end') this.#subs.delete(message.sub);
        entry.onEvent(message.event, entry.subscription);
        return;
      }
      case 'error':
        // Not tied to a request: the server could not read something we sent. Fail loudly
        // rather than leave calls waiting forever.
        for (const [id, pending] of this.#pending) {
          this.#pending.delete(id);
          pending.reject(new ServerError(message.error.code, message.error.message));
        }
        return;
      case 'welcome':
        this.#abort(new BadServerMessageError('the server sent a second welcome'));
        return;
      default: {
        const never: never = message;
        throw new Error(`unhandled message ${JSON.stringify(never)}`);
      }
    }
  }

  #startPing(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.#pingTimer = setInterval(() => {
      if (!this.#alive) {
        this.#abort(new ConnectionError('timeout', `${this.remote} stopped answering pings`));
        return;
      }
      this.#alive = false;
      this.#ws.ping();
    }, intervalMs);
    this.#pingTimer.unref();
  }

  #abort(error: Error): void {
    if (!this.#closeError) {
      this.#closeError =
        error instanceof ConnectionError
          ? error
          : new ConnectionError('closed', `connection to ${this.remote} dropped: ${error.message}`);
    }
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.reject(error);
    }
    this.#ws.terminate();
  }

  #onClose(error: ConnectionError): void {
    clearInterval(this.#pingTimer);
    this.#closeError ??= error;
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.reject(this.#closeError);
    }
    this.#subs.clear();
    const listeners = [...this.#closeListeners];
    this.#closeListeners.clear();
    if (!this.#closedByUs) for (const listener of listeners) listener(this.#closeError);
  }
}
