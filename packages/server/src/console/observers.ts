import { StringDecoder } from 'node:string_decoder';
import { isTerminal, type Event, type RunView } from '@builder/protocol';
import type { RunEventListener } from '../run-events.ts';
import type { RunRow } from '../store/rows.ts';
import type { LogStore } from './log-store.ts';

/** Where an observer's events go: a client connection. */
export interface ObserverSink {
  send(event: Event, done?: () => void): void;
  bufferedAmount(): number;
  readonly closed: boolean;
}

interface Observer {
  sub: number;
  runId: string;
  sink: ObserverSink;
  console: boolean;
  /** Bytes of the console file already sent. */
  offset: number;
  /** Replaying from the file (catching up, or dropped back because it reads slowly). */
  replaying: boolean;
  /**
   * Turns the bytes sent so far into text, replay and live alike: one decoder for the whole
   * subscription, flushed only at `end`, so a character split across chunks (or across the switch
   * between replay and live) stays whole.
   */
  decoder: StringDecoder;
  /** The run finished; send `end` once the console is caught up. */
  endWith: RunView | undefined;
  ended: boolean;
}

const READ_CHUNK = 256 * 1024;
/** An observer with more than this queued on its socket reads from the file instead. */
const MAX_BUFFERED = 4 * 1024 * 1024;

/**
 * Console and state subscribers. Each starts with a replay from the file, then gets live appends;
 * one that falls behind is moved back to replay instead of being buffered without bound.
 */
export class Observers {
  private readonly byRun = new Map<string, Set<Observer>>();

  constructor(private readonly logs: LogStore) {}

  add(opts: { sub: number; runId: string; sink: ObserverSink; console: boolean; finished: RunView | undefined }): void {
    const o: Observer = {
      sub: opts.sub,
      runId: opts.runId,
      sink: opts.sink,
      console: opts.console,
      offset: 0,
      replaying: opts.console,
      decoder: new StringDecoder('utf8'),
      endWith: opts.finished,
      ended: false,
    };
    let set = this.byRun.get(o.runId);
    if (!set) this.byRun.set(o.runId, (set = new Set()));
    set.add(o);
    if (o.replaying) this.pump(o);
    else if (o.endWith) this.end(o);
  }

  /**
   * The run-event listener: durable console bytes and state changes reach whoever watches the run,
   * made into a view by `view` only when someone does.
   */
  listener(view: (run: RunRow) => RunView): RunEventListener {
    return (e) => {
      if (e.type === 'output') return this.appended(e.runId, e.bytes, e.end);
      if (e.type === 'reclaimed' || !('run' in e) || !this.watching(e.run.id)) return;
      this.state(view(e.run), e.type === 'ended' && isTerminal(e.run.state));
    };
  }

  remove(sink: ObserverSink, sub?: number): void {
    for (const [runId, set] of this.byRun) {
      for (const o of set) if (o.sink === sink && (sub === undefined || o.sub === sub)) set.delete(o);
      if (set.size === 0) this.byRun.delete(runId);
    }
  }

  /**
   * Console bytes ending at file offset `end` were appended to a run's file and are durable;
   * `buf` undefined when nobody watched as they came (then they are read from the file).
   */
  appended(runId: string, buf: Buffer | undefined, end: number): void {
    const set = this.byRun.get(runId);
    if (!set) return;
    for (const o of set) {
      if (!o.console || o.replaying) continue;
      if (end <= o.offset) continue; // already read from the file when it caught up
      // not the bytes right after what it has (or it reads slowly): the file has them in order
      if (!buf || end - buf.length !== o.offset || o.sink.bufferedAmount() > MAX_BUFFERED) {
        o.replaying = true;
        this.pump(o);
        continue;
      }
      o.offset = end;
      // Per observer: its decoder may hold the start of a character from the previous chunk.
      const data = o.decoder.write(buf);
      if (data) o.sink.send({ type: 'event', sub: o.sub, event: { kind: 'console', data } });
    }
  }

  /** The run changed state; `terminal` when it is finished for good. */
  state(run: RunView, terminal: boolean): void {
    const set = this.byRun.get(run.id);
    if (!set) return;
    for (const o of set) {
      o.sink.send({ type: 'event', sub: o.sub, event: { kind: 'state', run } });
      if (terminal) {
        o.endWith = run;
        if (!o.replaying) this.end(o);
      }
    }
  }

  watching(runId: string): boolean {
    return this.byRun.has(runId);
  }

  count(): number {
    let n = 0;
    for (const set of this.byRun.values()) n += set.size;
    return n;
  }

  private pump(o: Observer): void {
    while (!o.sink.closed) {
      const size = this.logs.size(o.runId);
      if (o.offset >= size) {
        // Caught up: go live with the same decoder (it may hold part of a character).
        o.replaying = false;
        if (o.endWith) this.end(o);
        return;
      }
      const buf = this.logs.read(o.runId, o.offset, Math.min(READ_CHUNK, size - o.offset));
      if (buf.length === 0) {
        o.replaying = false;
        return;
      }
      o.offset += buf.length;
      const data = o.decoder.write(buf);
      if (o.sink.bufferedAmount() > MAX_BUFFERED / 4) {
        // wait until the socket took it before reading more
        o.sink.send({ type: 'event', sub: o.sub, event: { kind: 'console', data } }, () => this.pump(o));
        return;
      }
      if (data) o.sink.send({ type: 'event', sub: o.sub, event: { kind: 'console', data } });
    }
  }

  private end(o: Observer): void {
    if (o.ended || !o.endWith) return;
    o.ended = true;
    // End of the console: bytes of an incomplete character become U+FFFD.
    const rest = o.decoder.end();
    if (rest) o.sink.send({ type: 'event', sub: o.sub, event: { kind: 'console', data: rest } });
    o.sink.send({ type: 'event', sub: o.sub, event: { kind: 'end', run: o.endWith } });
    const set = this.byRun.get(o.runId);
    set?.delete(o);
    if (set?.size === 0) this.byRun.delete(o.runId);
  }
}
