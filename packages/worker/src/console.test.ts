import { describe, expect, it } from 'vitest';
import { OUTPUT_FRAME_HEADROOM, decodeOutputFrame, encodeOutputFrameInPlace } from '@builder/protocol';
import { type Chunk, ConsoleBuffer, type ConsoleOptions, incompleteTail } from './console.ts';

function make(options: Partial<ConsoleOptions> = {}) {
  const chunks: Chunk[] = [];
  const console = new ConsoleBuffer({
    options: { windowBytes: 1 << 20, flushBytes: 64 * 1024, flushMs: 5, maxChunkBytes: 256 * 1024, ...options },
    now: () => 42,
    onChunk: (c) => chunks.push(c),
    onSinkError: (err) => {
      throw err;
    },
  });
  return { console, chunks };
}

const write = (s: NodeJS.WritableStream, data: Buffer | string) =>
  new Promise<void>((resolve) => s.write(data, () => resolve()));
const textOf = (c: Chunk) => c.data.toString('utf8');
/** Decodes only valid UTF-8 (throws on anything else). */
const strict = new TextDecoder('utf-8', { fatal: true });

describe('ConsoleBuffer', () => {
  it('keeps a UTF-8 character whole when it is split across writes and chunks', async () => {
    const { console, chunks } = make({ flushMs: 1 });
    const euro = Buffer.from('€');
    await write(console.stdout, Buffer.concat([Buffer.from('a'), euro.subarray(0, 2)]));
    await new Promise((r) => setTimeout(r, 20)); // the batch timer fires between the halves
    await write(console.stdout, Buffer.concat([euro.subarray(2), Buffer.from('b\n')]));
    await console.close();
    expect(chunks.map(textOf)).toEqual(['a', '€b\n']);
    expect(chunks.map((c) => c.seq)).toEqual([1, 2]);
    expect(chunks.every((c) => c.bytes === c.data.length)).toBe(true);
  });

  it('numbers chunks across streams and system notes, one stream per chunk', async () => {
    const { console, chunks } = make();
    await write(console.stdout, 'out1\n');
    await write(console.stderr, 'err1\n');
    console.note('[builder] hello');
    await write(console.stdout, 'out2\n');
    await console.close();
    expect(chunks.map((c) => [c.seq, c.stream, textOf(c)])).toEqual([
      [1, 'out', 'out1\n'],
      [2, 'err', 'err1\n'],
      [3, 'system', '[builder] hello\n'],
      [4, 'out', 'out2\n'],
    ]);
    expect(console.lastSeq).toBe(4);
  });

  it('never makes a chunk larger than maxChunkBytes and cuts between characters', async () => {
    const { console, chunks } = make({ maxChunkBytes: 100, flushBytes: 1000 });
    const text = 'é'.repeat(333) + 'x';
    await write(console.stdout, text);
    await console.close();
    expect(chunks.every((c) => c.bytes <= 100)).toBe(true);
    expect(chunks.map(textOf).join('')).toBe(text);
    for (const c of chunks) expect(() => strict.decode(c.data)).not.toThrow();
    expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i + 1));
  });

  it('holds writes while the window is full and completes them as acks arrive', async () => {
    const { console, chunks } = make({ windowBytes: 300, flushBytes: 100 });
    let completed = 0;
    for (let i = 0; i < 10; i++) console.stdout.write(Buffer.alloc(100, 0x61), () => completed++);
    await new Promise((r) => setTimeout(r, 20));
    expect(completed).toBe(3);
    expect(console.bufferedBytes).toBeLessThanOrEqual(300);
    expect(console.blocked).toBe(true);
    console.ack(2);
    await new Promise((r) => setTimeout(r, 20));
    expect(completed).toBe(5);
    expect(console.held().map((c) => c.seq)).toEqual([3, 4, 5]);
    expect(console.held(4).map((c) => c.seq)).toEqual([4, 5]);
    const closing = console.close();
    for (let seq = 5; seq <= 10; seq++) {
      console.ack(seq);
      await new Promise((r) => setTimeout(r, 5));
    }
    await closing;
    expect(completed).toBe(10);
    expect(Buffer.concat(chunks.map((c) => c.data)).toString()).toBe('a'.repeat(1000));
    expect(console.maxBufferedBytes).toBeLessThanOrEqual(300);
  });

  it('flushes a small batch after flushMs without waiting for more', async () => {
    const { console, chunks } = make({ flushMs: 5 });
    await write(console.stdout, 'tick\n');
    expect(chunks).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 30));
    expect(chunks.map(textOf)).toEqual(['tick\n']);
    await console.close();
  });

  it('passes bytes that are not UTF-8 through exactly, without holding them back', async () => {
    const { console, chunks } = make({ flushMs: 1 });
    const junk = Buffer.from([0xff, 0xfe, 0x6f, 0x6b, 0x0a, 0x80, 0x80, 0x80, 0x80, 0xc0, 0xaf]);
    await write(console.stdout, junk);
    await new Promise((r) => setTimeout(r, 20));
    expect(chunks).toHaveLength(1); // nothing of it waits for more input
    await write(console.stderr, Buffer.from([0x61, 0xf0, 0x9f])); // ends inside a 4-byte sequence
    await console.close();
    expect(chunks.map((c) => [c.stream, [...c.data]])).toEqual([
      ['out', [...junk]],
      ['err', [0x61, 0xf0, 0x9f]], // end of stream: the incomplete rest is output too, as it is
    ]);
  });

  it('keeps every chunk valid UTF-8 when writes split characters anywhere, per stream', async () => {
    const { console, chunks } = make({ flushMs: 1, flushBytes: 7, maxChunkBytes: 9 });
    const out = Buffer.from('a€b😀cé€😀'.repeat(20));
    const err = Buffer.from('é😀x€'.repeat(20));
    for (let i = 0, j = 0; i < out.length || j < err.length; i += 1 + (i % 4), j += 2 + (j % 3)) {
      if (i < out.length) await write(console.stdout, out.subarray(i, Math.min(out.length, i + 1 + (i % 4))));
      if (j < err.length) await write(console.stderr, err.subarray(j, Math.min(err.length, j + 2 + (j % 3))));
    }
    await console.close();
    for (const c of chunks) expect(() => strict.decode(c.data), `chunk ${c.seq}`).not.toThrow();
    expect(chunks.every((c) => c.bytes <= 9 && c.bytes === c.data.length)).toBe(true);
    expect(Buffer.concat(chunks.filter((c) => c.stream === 'out').map((c) => c.data)).equals(out)).toBe(true);
    expect(Buffer.concat(chunks.filter((c) => c.stream === 'err').map((c) => c.data)).equals(err)).toBe(true);
    expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i + 1));
  });

  it('counts carried-over bytes against the window', async () => {
    const { console } = make({ windowBytes: 10, flushBytes: 1000, flushMs: 1000 });
    let completed = 0;
    console.stdout.write(Buffer.from([0x61, 0x61, 0x61, 0xe2, 0x82]), () => completed++); // 3 taken, 2 carried
    console.stdout.write(Buffer.from([0xac, 0x61, 0x61, 0x61, 0x61]), () => completed++); // 3+2+5 = 10: fits
    console.stdout.write(Buffer.from([0x61]), () => completed++); // 11: waits
    await new Promise((r) => setTimeout(r, 20));
    expect(completed).toBe(2);
    expect(console.bufferedBytes).toBe(10);
    console.discard();
  });
});

describe('ConsoleBuffer chunks as frames', () => {
  it('fills each chunk to flushBytes in a buffer with room for the frame header, cutting between characters', async () => {
    const { console, chunks } = make({ flushBytes: 1000, flushMs: 1000 });
    const text = Buffer.from('€'.repeat(1500)); // 4500 bytes, in writes that split characters
    for (let i = 0; i < text.length; i += 700) await write(console.stdout, text.subarray(i, i + 700));
    await console.close();
    // sent at flushBytes, or cut at the buffer's end (a quarter more) between characters
    for (const c of chunks.slice(0, -1)) expect(c.bytes).toBeGreaterThanOrEqual(1000);
    expect(chunks.every((c) => c.bytes <= 1250)).toBe(true);
    expect(chunks.map((c) => c.bytes)).toEqual([1248, 1248, 1002, 1002]);
    expect(Buffer.concat(chunks.map((c) => c.data)).equals(text)).toBe(true);
    for (const c of chunks) {
      expect(() => strict.decode(c.data)).not.toThrow();
      expect(c.headroom).toBe(OUTPUT_FRAME_HEADROOM);
      expect(c.data.byteOffset).toBeGreaterThanOrEqual(OUTPUT_FRAME_HEADROOM);
    }
    // the frame is built around the held bytes and leaves them as they are for a resend
    const header = {
      type: 'output',
      runId: '0f8fad5b-d9cb-469f-a165-70867728950e',
      attempt: 1,
      seq: 1,
      ts: 42,
    } as const;
    const first = chunks[0] as Chunk;
    const frame = encodeOutputFrameInPlace({ ...header, stream: 'out' }, first.data, first.headroom);
    expect(frame.buffer).toBe(first.data.buffer);
    expect(decodeOutputFrame(frame).payload.equals(text.subarray(0, 1248))).toBe(true);
  });

  it('keeps a small chunk in a buffer of its size, not in one for a full batch', async () => {
    const { console, chunks } = make({ flushMs: 1 });
    await write(console.stdout, 'tick\n');
    await new Promise((r) => setTimeout(r, 20));
    await write(console.stdout, 'tock\n');
    await console.close();
    expect(chunks.map(textOf)).toEqual(['tick\n', 'tock\n']);
    for (const c of chunks) expect(c.data.buffer.byteLength).toBeLessThan(64 * 1024);
  });

  it('fills the buffer of an acknowledged full chunk again, never that of a chunk still held', async () => {
    const { console, chunks } = make({ flushBytes: 64 * 1024, windowBytes: 1 << 20 });
    const block = (c: string) => Buffer.alloc(64 * 1024, c);
    for (const c of 'abc') await write(console.stdout, block(c));
    const [a, b, c] = chunks as [Chunk, Chunk, Chunk];
    expect(new Set([a.data.buffer, b.data.buffer, c.data.buffer]).size).toBe(3);
    console.ack(1);
    await write(console.stdout, block('d'));
    await write(console.stdout, block('e'));
    const [d, e] = chunks.slice(3) as [Chunk, Chunk];
    // the acknowledged first chunk's buffer is filled again; the others keep their bytes
    expect(d.data.buffer).toBe(a.data.buffer);
    expect(e.data.buffer).not.toBe(b.data.buffer);
    expect(e.data.buffer).not.toBe(c.data.buffer);
    expect([b, c, d, e].map((x) => x.data)).toEqual(['b', 'c', 'd', 'e'].map(block));
    await console.close();
  });

  it('keeps two refilled buffers, not a window of them, once the server has caught up', async () => {
    const { console, chunks } = make({ flushBytes: 64 * 1024, windowBytes: 1 << 20 });
    const block = Buffer.alloc(64 * 1024, 'x');
    for (let i = 0; i < 5; i++) await write(console.stdout, block);
    const burst = new Set(chunks.map((c) => c.data.buffer));
    console.ack(5);
    for (let i = 0; i < 5; i++) await write(console.stdout, block);
    expect(chunks.slice(5).filter((c) => burst.has(c.data.buffer))).toHaveLength(2);
    await console.close();
  });
});

describe('incompleteTail', () => {
  it.each<[string, number[], number]>([
    ['empty', [], 0],
    ['ASCII', [0x61], 0],
    ['a whole 2-byte character', [0xc3, 0xa9], 0],
    ['a whole 3-byte character', [0xe2, 0x82, 0xac], 0],
    ['a whole 4-byte character', [0xf0, 0x9f, 0x98, 0x80], 0],
    ['1 of 2', [0x61, 0xc3], 1],
    ['1 of 3', [0x61, 0xe2], 1],
    ['2 of 3', [0x61, 0xe2, 0x82], 2],
    ['1 of 4', [0xf0], 1],
    ['2 of 4', [0xf0, 0x9f], 2],
    ['3 of 4', [0xf0, 0x9f, 0x98], 3],
    ['only continuation bytes', [0x80, 0x80, 0x80, 0x80], 0],
    ['0xFF', [0x61, 0xff], 0],
    ['0xFE after a lead byte', [0xe2, 0xfe], 0],
  ])('%s', (_what, bytes, tail) => {
    expect(incompleteTail(Buffer.from(bytes))).toBe(tail);
  });
});
