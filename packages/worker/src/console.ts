import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import type { Stream } from '@builder/protocol';

/** One numbered piece of console output, kept until the server acknowledges it. */
export interface Chunk {
  readonly seq: number;
  readonly ts: number;
  readonly stream: Stream;
  readonly data: string;
  /** UTF-8 size of `data`. */
  readonly bytes: number;
}

export interface ConsoleOptions {
  /** Produced-but-unacknowledged bytes (including the open batch) before the job's pipes are paused. */
  readonly windowBytes: number;
  /** A batch is sent once it holds this many bytes… */
  readonly flushBytes: number;
  /** …or this long after its first byte. */
  readonly flushMs: number;
  /** No chunk is larger (LIMITS.maxChunkBytes). */
  readonly maxChunkBytes: number;
}

export interface ConsoleDeps {
  readonly options: ConsoleOptions;
  readonly now: () => number;
  /** Called for every new chunk, in seq order; the chunk stays held until `ack`. */
  readonly onChunk: (chunk: Chunk) => void;
  readonly onSinkError: (err: Error) => void;
}

type JobStream = 'out' | 'err';
interface Batch {
  stream: Stream;
  parts: string[];
  bytes: number;
  ts: number;
}
interface Blocked {
  stream: JobStream;
  buf: Buffer;
  done: () => void;
}

/**
 * The console of one attempt: decodes stdout and stderr separately (a UTF-8
 * character split across reads stays whole), batches them into numbered
 * chunks and holds every chunk until it is acknowledged. When the held bytes
 * reach the window, writes to the sinks are not completed, so a piped source
 * pauses and the job blocks on its own output.
 */
export class ConsoleBuffer {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly #deps: ConsoleDeps;
  readonly #opts: ConsoleOptions;
  readonly #held: Chunk[] = [];
  #heldBytes = 0;
  #batch: Batch | undefined;
  #timer: NodeJS.Timeout | undefined;
  #seq = 0;
  #acked = 0;
  #maxBuffered = 0;
  readonly #blocked: Blocked[] = [];
  #discarded = false;
  readonly #decoders: Record<JobStream, StringDecoder> = {
    out: new StringDecoder('utf8'),
    err: new StringDecoder('utf8'),
  };

  constructor(deps: ConsoleDeps) {
    this.#deps = deps;
    this.#opts = deps.options;
    this.stdout = this.#sink('out');
    this.stderr = this.#sink('err');
  }

  /** Highest seq produced so far (0: none). */
  get lastSeq(): number {
    return this.#seq;
  }
  get ackedSeq(): number {
    return this.#acked;
  }
  /** Bytes produced and not yet acknowledged, plus the open batch. */
  get bufferedBytes(): number {
    return this.#heldBytes + (this.#batch?.bytes ?? 0);
  }
  /** High-water mark of bufferedBytes over the attempt. */
  get maxBufferedBytes(): number {
    return this.#maxBuffered;
  }
  /** True while a job write waits for acks. */
  get blocked(): boolean {
    return this.#blocked.length > 0;
  }

  /** Held chunks with seq ≥ fromSeq, in order. */
  held(fromSeq = this.#acked + 1): readonly Chunk[] {
    const first = this.#held[0];
    if (!first || fromSeq <= first.seq) return this.#held;
    return this.#held.slice(fromSeq - first.seq);
  }

  /** The server made everything ≤ seq durable. */
  ack(seq: number): void {
    if (seq <= this.#acked) return;
    this.#acked = Math.min(seq, this.#seq);
    while (this.#held.length > 0 && (this.#held[0] as Chunk).seq <= this.#acked) {
      this.#heldBytes -= (this.#held.shift() as Chunk).bytes;
    }
    this.#release();
  }

  /** A line of the worker's own (stream `system`); not subject to the window. */
  note(text: string): void {
    if (this.#discarded) return;
    this.#flush();
    const data = text.endsWith('\n') ? text : `${text}\n`;
    this.#emit('system', data, Buffer.byteLength(data), this.#deps.now());
  }

  /**
   * End the sinks (if the executor did not), wait until every byte written to
   * them was decoded and chunked, and flush the last batch. Waits for acks if
   * the window is full.
   */
  async close(): Promise<void> {
    const sinks = [this.stdout, this.stderr];
    for (const s of sinks) if (!s.writableEnded) s.end();
    await Promise.all(sinks.map((s) => finished(s).catch(() => undefined)));
    this.#flush();
  }

  /** The attempt is being dropped: release blocked writers and keep nothing more. */
  discard(): void {
    this.#discarded = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#batch = undefined;
    this.#held.length = 0;
    this.#heldBytes = 0;
    for (const b of this.#blocked.splice(0)) b.done();
  }

  #sink(stream: JobStream): Writable {
    const decoder = this.#decoders[stream];
    const sink = new Writable({
      highWaterMark: this.#opts.flushBytes,
      write: (buf: Buffer, _enc, done) => this.#accept(stream, buf, done),
      final: (done) => {
        const rest = decoder.end();
        if (rest && !this.#discarded) this.#append(stream, rest);
        done();
      },
    });
    sink.on('error', (err) => this.#deps.onSinkError(err));
    return sink;
  }

  #accept(stream: JobStream, buf: Buffer, done: () => void): void {
    if (this.#discarded) return done();
    if (this.#blocked.length > 0 || !this.#fits(buf.length)) {
      this.#blocked.push({ stream, buf, done });
      return;
    }
    this.#take(stream, buf);
    done();
  }

  #fits(bytes: number): boolean {
    const buffered = this.bufferedBytes;
    return buffered === 0 || buffered + bytes <= this.#opts.windowBytes;
  }

  #release(): void {
    while (this.#blocked.length > 0 && !this.#discarded) {
      const next = this.#blocked[0] as Blocked;
      if (!this.#fits(next.buf.length)) return;
      this.#blocked.shift();
      this.#take(next.stream, next.buf);
      next.done();
    }
  }

  #take(stream: JobStream, buf: Buffer): void {
    const text = this.#decoders[stream].write(buf);
    if (text) this.#append(stream, text);
  }

  #append(stream: Stream, text: string): void {
    if (this.#batch && this.#batch.stream !== stream) this.#flush();
    if (!this.#batch) {
      this.#batch = { stream, parts: [], bytes: 0, ts: this.#deps.now() };
      this.#timer = setTimeout(() => this.#flush(), this.#opts.flushMs);
    }
    const batch = this.#batch;
    batch.parts.push(text);
    batch.bytes += Buffer.byteLength(text);
    this.#maxBuffered = Math.max(this.#maxBuffered, this.bufferedBytes);
    if (batch.bytes >= this.#opts.flushBytes) this.#flush();
  }

  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#batch;
    if (!batch) return;
    this.#batch = undefined;
    this.#emit(batch.stream, batch.parts.join(''), batch.bytes, batch.ts);
  }

  #emit(stream: Stream, data: string, bytes: number, ts: number): void {
    const max = this.#opts.maxChunkBytes;
    if (bytes <= max) return this.#push({ seq: ++this.#seq, ts, stream, data, bytes });
    // Rare (a huge batch or replacement characters): cut on UTF-8 character boundaries.
    const buf = Buffer.from(data);
    for (let start = 0; start < buf.length; ) {
      let end = Math.min(start + max, buf.length);
      while (end < buf.length && ((buf[end] as number) & 0xc0) === 0x80) end--;
      this.#push({ seq: ++this.#seq, ts, stream, data: buf.toString('utf8', start, end), bytes: end - start });
      start = end;
    }
  }

  #push(chunk: Chunk): void {
    this.#held.push(chunk);
    this.#heldBytes += chunk.bytes;
    this.#maxBuffered = Math.max(this.#maxBuffered, this.bufferedBytes);
    this.#deps.onChunk(chunk);
  }
}
