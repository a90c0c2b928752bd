import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { OUTPUT_FRAME_HEADROOM, type Stream } from '@builder/protocol';

/** One numbered piece of console output, kept until the server acknowledges it. */
export interface Chunk {
  readonly seq: number;
  readonly ts: number;
  readonly stream: Stream;
  /** The raw bytes, as the job wrote them; never ends inside a UTF-8 sequence (see ConsoleBuffer). */
  readonly data: Buffer;
  /** `data.length`. */
  readonly bytes: number;
  /**
   * Bytes right before `data` in its buffer that belong to the chunk and are free for the frame
   * header (encodeOutputFrameInPlace): the frame is sent without another copy of the output.
   */
  readonly headroom: number;
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
  /** OUTPUT_FRAME_HEADROOM bytes kept free for the frame header, then the batch's bytes. */
  buf: Buffer;
  bytes: number;
  ts: number;
}
interface Blocked {
  stream: JobStream;
  buf: Buffer;
  done: () => void;
}

const NO_BYTES = Buffer.alloc(0);
/** Refilled batch buffers kept once the server has caught up with the job (see #free). */
const FREE_WHEN_CAUGHT_UP = 2;
const HEADROOM = OUTPUT_FRAME_HEADROOM;

/**
 * The console of one attempt: takes the raw bytes of stdout and stderr,
 * batches them into numbered chunks and holds every chunk until it is
 * acknowledged. Bytes are never altered (binary output arrives byte-exact), but
 * a UTF-8 sequence left incomplete at the end of a write is carried over to the
 * next bytes of the same stream, so no chunk ends inside a character: each
 * chunk is valid UTF-8 whenever the job's output is. When the held bytes reach
 * the window, writes to the sinks are not completed, so a piped source pauses
 * and the job blocks on its own output.
 */
export class ConsoleBuffer {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly #deps: ConsoleDeps;
  readonly #opts: ConsoleOptions;
  readonly #held: Chunk[] = [];
  #heldBytes = 0;
  #batch: Batch | undefined;
  /**
   * Bytes a batch's buffer holds. A batch is sent once it holds flushBytes; the quarter more is
   * room for the write that gets it there, so that write is rarely split into a small next chunk
   * (every chunk costs both sides per frame). A write beyond it is cut at the buffer's end.
   */
  readonly #capacity: number;
  /** A batch buffer to fill next: the one a small batch was copied out of. */
  #spare: Buffer | undefined;
  /**
   * Buffers of full batches the server acknowledged, filled again before a new one is allocated:
   * a console streaming in bulk allocates no batch buffers once the window is full. (Every buffer
   * allocated counts against V8's old generation until a GC frees it: 200 MiB of console made the
   * worker run a full mark-compact every ~16 MiB.) Safe to reuse: ws masks a chunk into a frame of
   * its own when it is sent, and an acknowledged chunk is never sent again. At most a window's
   * worth while the job is ahead of the server; FREE_WHEN_CAUGHT_UP once it is not, so a run that
   * printed a burst once does not keep the burst's memory until it ends.
   */
  readonly #free: Buffer[] = [];
  /** The most buffers the window holds; more in #free would only be kept for nothing. */
  readonly #freeMax: number;
  #timer: NodeJS.Timeout | undefined;
  #seq = 0;
  #acked = 0;
  #maxBuffered = 0;
  readonly #blocked: Blocked[] = [];
  #discarded = false;
  /** Per stream, the (at most 3) bytes of a UTF-8 sequence still missing its end. */
  readonly #carry: Record<JobStream, Buffer> = { out: NO_BYTES, err: NO_BYTES };

  constructor(deps: ConsoleDeps) {
    this.#deps = deps;
    this.#opts = deps.options;
    const { flushBytes, maxChunkBytes } = this.#opts;
    this.#capacity = Math.max(1, Math.min(flushBytes + Math.floor(flushBytes / 4), maxChunkBytes));
    this.#freeMax = Math.ceil(this.#opts.windowBytes / this.#capacity) + 1;
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
      const chunk = this.#held.shift() as Chunk;
      this.#heldBytes -= chunk.bytes;
      this.#reuse(chunk);
    }
    // everything sent is acknowledged: the job is not ahead of the server (any more), so a burst
    // of output is over; keep a few buffers, not a window's worth for the rest of the run
    if (this.#held.length === 0 && this.#free.length > FREE_WHEN_CAUGHT_UP) this.#free.length = FREE_WHEN_CAUGHT_UP;
    this.#release();
  }

  /** A line of the worker's own (stream `system`); not subject to the window. */
  note(text: string): void {
    if (this.#discarded) return;
    this.#flush();
    const data = Buffer.from(text.endsWith('\n') ? text : `${text}\n`, 'utf8');
    this.#emit('system', data, this.#deps.now());
  }

  /**
   * End the sinks (if the executor did not), wait until every byte written to
   * them was chunked, and flush the last batch. Waits for acks if
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
    this.#spare = undefined;
    this.#free.length = 0;
    this.#held.length = 0;
    this.#heldBytes = 0;
    this.#carry.out = NO_BYTES;
    this.#carry.err = NO_BYTES;
    for (const b of this.#blocked.splice(0)) b.done();
  }

  #sink(stream: JobStream): Writable {
    const sink = new Writable({
      highWaterMark: this.#opts.flushBytes,
      write: (buf: Buffer, _enc, done) => this.#accept(stream, buf, done),
      final: (done) => {
        // The stream ended inside a sequence: those bytes are output too, as they are.
        const rest = this.#carry[stream];
        this.#carry[stream] = NO_BYTES;
        if (rest.length > 0 && !this.#discarded) this.#append(stream, rest);
        done();
      },
    });
    sink.on('error', (err) => this.#deps.onSinkError(err));
    return sink;
  }

  #accept(stream: JobStream, buf: Buffer, done: () => void): void {
    if (this.#discarded) return done();
    if (this.#blocked.length > 0 || !this.#fits(stream, buf.length)) {
      this.#blocked.push({ stream, buf, done });
      return;
    }
    this.#take(stream, buf);
    done();
  }

  /** Taking `bytes` more of `stream` (plus what it carries over) keeps the window. */
  #fits(stream: JobStream, bytes: number): boolean {
    const buffered = this.bufferedBytes;
    return buffered === 0 || buffered + this.#carry[stream].length + bytes <= this.#opts.windowBytes;
  }

  #release(): void {
    while (this.#blocked.length > 0 && !this.#discarded) {
      const next = this.#blocked[0] as Blocked;
      if (!this.#fits(next.stream, next.buf.length)) return;
      this.#blocked.shift();
      this.#take(next.stream, next.buf);
      next.done();
    }
  }

  #take(stream: JobStream, buf: Buffer): void {
    let head = this.#carry[stream];
    // The lookback is the last 3 bytes; with a shorter write it may reach into the carry.
    if (head.length > 0 && buf.length < 3) [head, buf] = [NO_BYTES, Buffer.concat([head, buf])];
    const cut = buf.length - incompleteTail(buf);
    // Copied: a few bytes must not keep the pipe's read buffer alive.
    this.#carry[stream] = cut === buf.length ? NO_BYTES : Buffer.from(buf.subarray(cut));
    const body = cut === buf.length ? buf : buf.subarray(0, cut);
    // Carry and body together: the batch must not be flushed between the halves of a character.
    if (head.length + body.length > 0) this.#append(stream, head, body);
  }

  /**
   * Add bytes to the batch; `more` is added too before the batch may be flushed. The bytes are
   * copied into the batch's buffer behind the room for the frame header: the one copy of the
   * output on the worker before the WebSocket masks it (no concatenation of the pipe's reads, no
   * copy into a frame).
   */
  #append(stream: Stream, bytes: Buffer, more: Buffer = NO_BYTES): void {
    if (this.#batch && this.#batch.stream !== stream) this.#flush();
    this.#copy(stream, bytes);
    this.#copy(stream, more);
    this.#maxBuffered = Math.max(this.#maxBuffered, this.bufferedBytes);
    if (this.#batch && this.#batch.bytes >= this.#opts.flushBytes) this.#flush();
  }

  #copy(stream: Stream, src: Buffer): void {
    for (let off = 0; off < src.length;) {
      const batch = this.#batch ?? this.#open(stream);
      const n = src.copy(batch.buf, HEADROOM + batch.bytes, off);
      batch.bytes += n;
      off += n;
      if (batch.bytes >= this.#capacity) this.#flushFull(stream);
    }
  }

  /** An acknowledged chunk that filled a whole batch buffer of its own gives it back. */
  #reuse(chunk: Chunk): void {
    const { data } = chunk;
    const whole = chunk.headroom === HEADROOM && data.byteOffset === HEADROOM;
    if (whole && data.buffer.byteLength === HEADROOM + this.#capacity && this.#free.length < this.#freeMax) {
      this.#free.push(Buffer.from(data.buffer));
    }
  }

  #open(stream: Stream): Batch {
    const buf = this.#spare ?? this.#free.pop() ?? Buffer.allocUnsafe(HEADROOM + this.#capacity);
    this.#spare = undefined;
    this.#batch = { stream, buf, bytes: 0, ts: this.#deps.now() };
    this.#timer = setTimeout(() => this.#flush(), this.#opts.flushMs);
    return this.#batch;
  }

  /**
   * The batch is full, possibly in the middle of a write: send it up to its last whole character
   * and start the next batch with the rest of that character (at most 3 bytes).
   */
  #flushFull(stream: Stream): void {
    const batch = this.#batch as Batch;
    const end = HEADROOM + batch.bytes;
    const tail = incompleteTail(batch.buf.subarray(HEADROOM, end));
    if (tail === 0 || tail === batch.bytes) return this.#flush();
    batch.bytes -= tail;
    this.#flush();
    // the flushed chunk's view ends before these bytes: reading them from its buffer is safe
    const next = this.#open(stream);
    batch.buf.copy(next.buf, HEADROOM, end - tail, end);
    next.bytes = tail;
  }

  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#batch;
    if (!batch) return;
    this.#batch = undefined;
    let buf = batch.buf;
    const { bytes } = batch;
    if (bytes < this.#capacity / 4) {
      // a small batch (the timer, a change of stream) is held in a buffer of its size, not in one
      // for a full batch; that one is filled by the next batch
      buf = Buffer.allocUnsafe(HEADROOM + bytes);
      batch.buf.copy(buf, HEADROOM, HEADROOM, HEADROOM + bytes);
      this.#spare = batch.buf;
    }
    const data = buf.subarray(HEADROOM, HEADROOM + bytes);
    this.#push({ seq: ++this.#seq, ts: batch.ts, stream: batch.stream, data, bytes, headroom: HEADROOM });
  }

  /** A chunk of its own for `data` (the worker's notes; batches of job output never exceed a chunk). */
  #emit(stream: Stream, data: Buffer, ts: number): void {
    const max = this.#opts.maxChunkBytes;
    if (data.length <= max) return this.#push({ seq: ++this.#seq, ts, stream, data, bytes: data.length, headroom: 0 });
    // Rare (a note longer than a chunk): cut between UTF-8 characters.
    for (let start = 0; start < data.length;) {
      let end = Math.min(start + max, data.length);
      if (end < data.length) {
        const cut = end - incompleteTail(data.subarray(start, end));
        if (cut > start) end = cut;
      }
      this.#push({ seq: ++this.#seq, ts, stream, data: data.subarray(start, end), bytes: end - start, headroom: 0 });
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

/**
 * How many bytes at the end of `buf` are the start of a UTF-8 sequence that is
 * not complete yet (0–3). Looks back at most 3 bytes; anything that is not a
 * valid beginning (stray continuation bytes, 0xF8–0xFF) counts as complete, so
 * invalid output is passed on as it is instead of being held.
 */
export function incompleteTail(buf: Uint8Array): number {
  const n = buf.length;
  for (let i = 1; i <= 3 && i <= n; i++) {
    const b = buf[n - i] as number;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back
    if (b < 0xc0 || b >= 0xf8) return 0; // ASCII or not a lead byte
    const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
    return length > i ? i : 0;
  }
  return 0;
}
