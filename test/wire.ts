/**
 * A raw WebSocket peer for tests that speak the wire protocol directly (hostile traffic, cheap
 * polling): every message received is queued as parsed JSON; `next()` takes the next one.
 */
// The root package has no `ws`; the server's copy is the one the programs use.
import WebSocket from '../packages/server/node_modules/ws/wrapper.mjs';

import * as protocol from '../packages/protocol/dist/index.js';

export { WebSocket };

/**
 * Console output as a worker sends it: a binary output frame (protocol `encodeOutputFrame`) where
 * the protocol has them, else the older JSON text `output` message.
 */
export function outputMessage(
  h: { runId: string; attempt: number; seq: number; ts?: number; stream?: string },
  data: string | Buffer,
): Buffer | string {
  const header = { type: 'output', ts: Date.now(), stream: 'out', ...h };
  const encode = (protocol as { encodeOutputFrame?: (h: unknown, p: Buffer) => Buffer }).encodeOutputFrame;
  if (typeof encode === 'function') return encode(header, Buffer.from(data));
  return JSON.stringify({ ...header, data: String(data) });
}

export interface WireMessage {
  type: string;
  [k: string]: unknown;
}

export class Peer {
  readonly ws: WebSocket;
  private readonly queue: WireMessage[] = [];
  private waiters: ((m: WireMessage | undefined) => void)[] = [];
  closed: { code: number; reason: string } | undefined;
  readonly closedP: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;
  private nextId = 1;

  constructor(url: string, opts: { maxPayload?: number } = {}) {
    this.ws = new WebSocket(url.replace(/^http/, 'ws') + '/ws', {
      perMessageDeflate: false,
      maxPayload: opts.maxPayload ?? 64 * 1024 * 1024,
    });
    this.opened = new Promise((ok, fail) => {
      this.ws.once('open', () => ok());
      this.ws.once('error', fail);
    });
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data: Buffer) => {
      const m = JSON.parse(String(data)) as WireMessage;
      const w = this.waiters.shift();
      if (w) w(m);
      else this.queue.push(m);
    });
    this.closedP = new Promise((ok) =>
      this.ws.on('close', (code: number, reason: Buffer) => {
        this.closed = { code, reason: String(reason) };
        for (const w of this.waiters.splice(0)) w(undefined);
        ok(this.closed);
      }),
    );
  }

  static async open(url: string): Promise<Peer> {
    const p = new Peer(url);
    await p.opened;
    return p;
  }

  send(data: unknown): void {
    this.ws.send(typeof data === 'string' || Buffer.isBuffer(data) ? data : JSON.stringify(data));
  }

  /** The next message; throws if none within `ms` or the connection closed first. */
  async next(ms = 5000, what = 'a message'): Promise<WireMessage> {
    const queued = this.queue.shift();
    if (queued) return queued;
    if (this.closed)
      throw new Error(`connection closed (${this.closed.code} ${this.closed.reason}) while waiting for ${what}`);
    return new Promise((ok, fail) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        fail(new Error(`no answer within ${ms} ms: expected ${what}`));
      }, ms);
      const waiter = (m: WireMessage | undefined) => {
        clearTimeout(timer);
        if (m) ok(m);
        else
          fail(new Error(`connection closed (${this.closed?.code} ${this.closed?.reason}) while waiting for ${what}`));
      };
      this.waiters.push(waiter);
    });
  }

  /** Nothing arrives within `ms`. */
  async quiet(ms = 300): Promise<WireMessage | undefined> {
    try {
      return await this.next(ms);
    } catch {
      return undefined;
    }
  }

  async hello(role: 'client' | 'worker', token: string, extra: Record<string, unknown> = {}): Promise<WireMessage> {
    this.send({ type: 'hello', versions: [1], role, token, ...extra });
    return this.next();
  }

  /** A client request; returns the response with this id (events in between are skipped). */
  async request(method: string, params: unknown = {}): Promise<WireMessage> {
    const id = this.nextId++;
    this.send({ type: 'request', id, method, params });
    for (;;) {
      const m = await this.next();
      if (m.type === 'response' && m.id === id) return m;
    }
  }

  close(): void {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
  }
}

/** A client connection for cheap polling (no process per query): `run(ref)` is the run view. */
export class Api {
  private constructor(private readonly peer: Peer) {}

  static async connect(url: string, token: string): Promise<Api> {
    const peer = await Peer.open(url);
    const welcome = await peer.hello('client', token);
    if (welcome.type !== 'welcome') throw new Error(`hello refused: ${JSON.stringify(welcome)}`);
    return new Api(peer);
  }

  async call<T = unknown>(method: string, params: unknown = {}): Promise<T> {
    const r = (await this.peer.request(method, params)) as WireMessage & {
      ok: boolean;
      result?: unknown;
      error?: { code: string; message: string };
    };
    if (!r.ok) throw new Error(`${method} failed: ${r.error?.code} ${r.error?.message}`);
    return r.result as T;
  }

  run(
    ref: string,
  ): Promise<{ state: string; attempt: number; result: { kind: string } | null; worker: string | null; id: string }> {
    return this.call('run', { run: ref });
  }

  close(): void {
    this.peer.close();
  }
}
