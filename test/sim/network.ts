/**
 * A simulated network of WebSocket connections between workers and the server. Within one
 * connection each direction delivers in order, exactly once, until the connection dies: a WebSocket
 * is a TCP stream, which never reorders or duplicates. So reordering happens only across
 * connections (an old connection's late messages arriving after a new one's), and duplication only
 * as the protocol's own resending after a reconnect. What the network does do: random delays, delay
 * spikes, cuts (both sides see 1006, in-flight messages lost), one side giving up while its old
 * messages still trickle in, black holes (nothing arrives, no close: only pings notice), and a peer
 * process vanishing.
 */
import { EventEmitter } from 'node:events';
import type { SimTime, Task } from './time.ts';

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** What travels on a connection: the upgrade's answer, messages, and TCP/WebSocket control. */
export type Frame =
  | { kind: 'open' }
  | { kind: 'data'; data: Buffer; binary: boolean }
  | { kind: 'ping' }
  | { kind: 'pong' }
  | { kind: 'close'; code: number; reason: string }
  | { kind: 'close-ack'; code: number; reason: string }
  | { kind: 'fin' };

/** Sees every delivered frame (the trace of a failing seed). */
export type Tap = (from: SimSocket, to: SimSocket, frame: Frame) => void;

/** One end of a connection: the subset of a `ws` WebSocket both the hub and the worker use. */
export class SimSocket extends EventEmitter {
  readyState = CONNECTING;
  readonly bufferedAmount = 0;
  peer!: SimSocket;
  /** The end's process is gone: it emits nothing more. */
  dead = false;
  private emittedClose = false;

  constructor(
    readonly link: Link,
    /** The process incarnation that owns this end (its tasks are dropped when it crashes). */
    public owner: string,
    readonly label: string,
  ) {
    super();
  }

  send(data: string | Buffer, a?: unknown, b?: unknown): void {
    const cb = (typeof a === 'function' ? a : b) as ((err?: Error) => void) | undefined;
    const binary = typeof a === 'object' && a !== null && (a as { binary?: boolean }).binary === true;
    if (this.readyState !== OPEN) {
      if (cb) process.nextTick(cb, new Error('WebSocket is not open'));
      return;
    }
    this.link.transmit(this, { kind: 'data', data: Buffer.from(data), binary });
    if (cb) process.nextTick(cb);
  }

  ping(): void {
    if (this.readyState === OPEN) this.link.transmit(this, { kind: 'ping' });
  }

  close(code = 1005, reason = ''): void {
    if (this.readyState === CONNECTING) return this.terminate();
    if (this.readyState !== OPEN) return;
    this.readyState = CLOSING;
    this.link.transmit(this, { kind: 'close', code, reason });
  }

  /** Destroy the socket: closed here at once (asynchronously, as `ws` does), a FIN for the peer. */
  terminate(): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    if (this.peer) this.link.transmit(this, { kind: 'fin' });
    this.link.time.at(0, this.owner, () => this.closed(1006));
  }

  /** The end learns its connection is over ('close' once, as `ws` emits it; nothing from a dead process). */
  closed(code: number, reason = ''): void {
    if (this.dead || this.emittedClose) {
      this.readyState = CLOSED;
      return;
    }
    this.emittedClose = true;
    this.readyState = CLOSED;
    this.emit('close', code, Buffer.from(reason));
  }

  receive(frame: Frame): void {
    if (this.dead) return;
    switch (frame.kind) {
      case 'open':
        if (this.readyState !== CONNECTING) return;
        this.readyState = OPEN;
        this.emit('open');
        return;
      case 'data':
        // `ws` still emits what arrives after close() was called, until the peer's close frame
        if (this.readyState === OPEN || this.readyState === CLOSING) this.emit('message', frame.data, frame.binary);
        return;
      case 'ping':
        if (this.readyState === OPEN) this.link.transmit(this, { kind: 'pong' });
        return;
      case 'pong':
        if (this.readyState === OPEN) this.emit('pong');
        return;
      case 'close':
        // the closing handshake: answer, then this end is closed with the peer's code
        if (this.readyState === OPEN) this.link.transmit(this, { kind: 'close-ack', code: frame.code, reason: '' });
        this.readyState = CLOSED;
        return this.closed(frame.code, frame.reason);
      case 'close-ack':
        return this.closed(frame.code, frame.reason);
      case 'fin':
        return this.closed(1006);
    }
  }
}

/** One direction of a connection: frames in flight, delivered in order. */
class Pipe {
  readonly queue: { at: number; frame: Frame }[] = [];
  task: Task | undefined;
}

/** One TCP connection: its two ends and the state of the path between them. */
export class Link {
  readonly worker: SimSocket;
  server: SimSocket | undefined;
  /** Nothing gets through any more, and no end is told. */
  blackhole = false;
  /** Delays are large (ms) until this time. */
  spikeUntil = 0;
  /** During a spike: this much on top of every delay (undefined: a random spike per frame). */
  slowMs: number | undefined;
  private readonly pipes = new Map<SimSocket, Pipe>();

  constructor(
    readonly time: SimTime,
    readonly delay: () => number,
    readonly spike: () => number,
    readonly tap: Tap,
    workerOwner: string,
    readonly id: number,
  ) {
    this.worker = new SimSocket(this, workerOwner, `c${id}`);
  }

  transmit(from: SimSocket, frame: Frame): void {
    if (this.blackhole || !from.peer) return;
    const pipe = this.pipe(from);
    const d = this.time.now < this.spikeUntil ? (this.slowMs ?? this.spike()) + this.delay() : this.delay();
    const last = pipe.queue[pipe.queue.length - 1]?.at ?? 0;
    pipe.queue.push({ at: Math.max(last, this.time.now + d), frame });
    if (!pipe.task) this.arm(from, pipe);
  }

  /** Both ends see the connection reset (1006) after a moment; what was in flight is lost. */
  cut(): void {
    this.blackhole = true;
    for (const end of [this.worker, this.server]) {
      if (!end || end.readyState === CLOSED) continue;
      this.time.at(this.delay(), end.owner, () => end.closed(1006));
    }
  }

  /**
   * The worker gives up on this connection now (say, its pings went unanswered), while what it
   * sent is still crawling towards the server, which learns of the end only after all of it: the
   * old connection's messages arrive after the next connection's.
   */
  abandonByWorker(lag: number): void {
    const pipe = this.pipe(this.worker);
    for (const f of pipe.queue) f.at += lag;
    pipe.task?.cancel();
    pipe.task = undefined;
    if (pipe.queue.length > 0) this.arm(this.worker, pipe);
    this.spikeUntil = this.time.now + 1;
    this.worker.terminate();
  }

  private pipe(from: SimSocket): Pipe {
    let p = this.pipes.get(from);
    if (!p) this.pipes.set(from, (p = new Pipe()));
    return p;
  }

  private arm(from: SimSocket, pipe: Pipe): void {
    const head = pipe.queue[0];
    const to = from.peer;
    if (!head) return;
    pipe.task = this.time.at(head.at - this.time.now, to.owner, () => {
      pipe.task = undefined;
      const { frame } = pipe.queue.shift()!;
      if (pipe.queue.length > 0) this.arm(from, pipe);
      if (this.blackhole) return;
      this.tap(from, to, frame);
      to.receive(frame);
    });
  }
}

/** The server's side of the network: where new connections land, when a server is up. */
export interface Listener {
  readonly owner: string;
  accept(end: SimSocket): void;
}

/** Every connection ever made, and the server that new ones reach (none while it is down). */
export class SimNet {
  readonly links: Link[] = [];
  listener: Listener | undefined;

  constructor(
    readonly time: SimTime,
    readonly delay: () => number,
    readonly spike: () => number,
    readonly tap: Tap,
  ) {}

  /** The worker's way to open a WebSocket: upgrade after a delay, refused while no server is up. */
  connect(workerOwner: string, handshakeTimeoutMs: number): SimSocket {
    const link = new Link(this.time, this.delay, this.spike, this.tap, workerOwner, this.links.length + 1);
    this.links.push(link);
    const end = link.worker;
    // as `ws` does with its handshakeTimeout option: an upgrade that never completes is given up
    this.time.at(handshakeTimeoutMs, workerOwner, () => {
      if (end.readyState !== CONNECTING) return;
      end.emit('error', new Error('opening handshake has timed out (simulated)'));
      end.terminate();
    });
    this.time.at(this.delay(), 'net', () => {
      const listener = this.listener;
      if (end.readyState !== CONNECTING) return; // the worker gave up first
      if (!listener) {
        this.time.at(this.delay(), workerOwner, () => {
          end.emit('error', new Error('connect ECONNREFUSED (simulated)'));
          end.closed(1006);
        });
        return;
      }
      const srv = new SimSocket(link, listener.owner, `${end.label}`);
      srv.readyState = OPEN;
      srv.peer = end;
      end.peer = srv;
      link.server = srv;
      this.time.owner = listener.owner;
      listener.accept(srv);
      // the 101 answer travels back like any frame; nothing the server sends can overtake it
      link.transmit(srv, { kind: 'open' });
    });
    return end;
  }

  /** A process died: its ends say nothing more; the kernel sends what was buffered, then a FIN (or nothing: a host gone silent). */
  processDown(owner: string, silent: boolean): void {
    for (const link of this.links) {
      for (const end of [link.worker, link.server]) {
        if (!end || end.owner !== owner || end.dead) continue;
        end.dead = true;
        if (silent) link.blackhole = true;
        else if (end.readyState !== CLOSED) link.transmit(end, { kind: 'fin' });
        end.readyState = CLOSED;
      }
    }
  }
}
