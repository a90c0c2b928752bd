import { WebSocketServer, type WebSocket } from 'ws';
import {
  decode,
  encode,
  ErrorCode,
  HelloSchema,
  LIMITS,
  Methods,
  ProtocolError,
  RequestSchema,
  validate,
  type Hello,
  type MethodName,
  type ObserveEvent,
} from '@builder/protocol';

/** A scripted stand-in for builder-server: validates what the client sends, answers as the test says. */

export interface FakeRequest {
  method: MethodName;
  params: unknown;
  /** Which connection (1, 2, …) it came on. */
  connection: number;
}

export interface FakeConnection {
  readonly index: number;
  readonly hello: Hello;
  send(message: unknown): void;
  event(sub: number, event: ObserveEvent): void;
  /** Run after the response to the current request is sent (same tick: exercises event ordering). */
  afterResponse(fn: () => void): void;
  /** Close abruptly, like a crashed server or a network cut. */
  terminate(): void;
}

/** Return a result, or throw a ProtocolError to answer with an error response. */
export type Handler = (request: FakeRequest, conn: FakeConnection) => unknown;

export interface FakeServerOptions {
  handler?: Handler;
  /** Only this token is accepted (default: any). */
  token?: string;
  port?: number;
}

export class FakeServer {
  readonly requests: FakeRequest[] = [];
  /** Anything the client sent that the protocol schemas refuse; tests expect none. */
  readonly violations: string[] = [];
  readonly #wss: WebSocketServer;
  readonly #options: FakeServerOptions;
  handler: Handler;
  connections = 0;

  private constructor(wss: WebSocketServer, options: FakeServerOptions) {
    this.#wss = wss;
    this.#options = options;
    this.handler = options.handler ?? (() => ({}));
    wss.on('connection', (ws) => this.#accept(ws));
  }

  static start(options: FakeServerOptions = {}): Promise<FakeServer> {
    return new Promise((resolve, reject) => {
      const wss = new WebSocketServer({
        host: '127.0.0.1',
        port: options.port ?? 0,
        path: '/ws',
        maxPayload: LIMITS.maxMessageBytes,
      });
      wss.once('error', reject);
      wss.once('listening', () => resolve(new FakeServer(wss, options)));
    });
  }

  get port(): number {
    const address = this.#wss.address();
    if (address === null || typeof address === 'string') throw new Error('the fake server is not listening on TCP');
    return address.port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  requestsFor(method: MethodName): FakeRequest[] {
    return this.requests.filter((r) => r.method === method);
  }

  close(): Promise<void> {
    for (const client of this.#wss.clients) client.terminate();
    return new Promise((resolve) => this.#wss.close(() => resolve()));
  }

  #accept(ws: WebSocket): void {
    const index = ++this.connections;
    let hello: Hello | undefined;
    ws.on('error', () => {});
    ws.on('message', (raw, isBinary) => {
      if (isBinary) {
        this.violations.push('binary frame');
        return;
      }
      const text = raw.toString();
      if (!hello) {
        try {
          hello = decode(HelloSchema, text);
        } catch (error) {
          this.violations.push(`hello: ${(error as Error).message}`);
          ws.close();
          return;
        }
        if (hello.role !== 'client') this.violations.push(`hello role ${hello.role}`);
        if (this.#options.token !== undefined && hello.token !== this.#options.token) {
          ws.send(encode({ type: 'error', error: { code: ErrorCode.Unauthorized, message: 'unknown token' } }));
          ws.close(4001, 'unauthorized');
          return;
        }
        ws.send(
          encode({
            type: 'welcome',
            version: 1,
            serverVersion: 'fake',
            role: 'admin',
            heartbeatMs: 5000,
            leaseMs: 15000,
          }),
        );
        return;
      }
      void this.#request(ws, index, hello, text);
    });
  }

  async #request(ws: WebSocket, index: number, hello: Hello, text: string): Promise<void> {
    let id = -1;
    const later: (() => void)[] = [];
    const conn: FakeConnection = {
      index,
      hello,
      send: (message) => ws.send(encode(message)),
      event: (sub, event) => ws.send(encode({ type: 'event', sub, event })),
      afterResponse: (fn) => later.push(fn),
      terminate: () => ws.terminate(),
    };
    let entry: FakeRequest;
    try {
      const request = decode(RequestSchema, text);
      id = request.id;
      validate(Methods[request.method].params, request.params, `${request.method} params`);
      entry = { method: request.method, params: request.params, connection: index };
    } catch (error) {
      this.violations.push((error as Error).message);
      conn.send({
        type: 'response',
        id: Math.max(id, 0),
        ok: false,
        error: { code: ErrorCode.BadMessage, message: (error as Error).message },
      });
      return;
    }
    this.requests.push(entry);
    try {
      const result = await this.handler(entry, conn);
      if (ws.readyState !== ws.OPEN) return;
      conn.send({ type: 'response', id, ok: true, result });
    } catch (error) {
      const code = error instanceof ProtocolError ? error.code : ErrorCode.Internal;
      if (ws.readyState === ws.OPEN)
        conn.send({ type: 'response', id, ok: false, error: { code, message: (error as Error).message } });
    }
    for (const fn of later) fn();
  }
}
