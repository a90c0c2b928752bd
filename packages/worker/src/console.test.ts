import { describe, expect, it } from 'vitest';
import { type Chunk, ConsoleBuffer, type ConsoleOptions } from './console.ts';

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

describe('ConsoleBuffer', () => {
  it('keeps a UTF-8 character whole when it is split across writes and chunks', async () => {
    const { console, chunks } = make({ flushMs: 1 });
    const euro = Buffer.from('€');
    await write(console.stdout, Buffer.concat([Buffer.from('a'), euro.subarray(0, 2)]));
    await new Promise((r) => setTimeout(r, 20)); // the batch timer fires between the halves
    await write(console.stdout, Buffer.concat([euro.subarray(2), Buffer.from('b\n')]));
    await console.close();
    expect(chunks.map((c) => c.data)).toEqual(['a', '€b\n']);
    expect(chunks.map((c) => c.seq)).toEqual([1, 2]);
    expect(chunks.every((c) => c.bytes === Buffer.byteLength(c.data))).toBe(true);
  });

  it('numbers chunks across streams and system notes, one stream per chunk', async () => {
    const { console, chunks } = make();
    await write(console.stdout, 'out1\n');
    await write(console.stderr, 'err1\n');
    console.note('[builder] hello');
    await write(console.stdout, 'out2\n');
    await console.close();
    expect(chunks.map((c) => [c.seq, c.stream, c.data])).toEqual([
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
    expect(chunks.map((c) => c.data).join('')).toBe(text);
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
    expect(chunks.map((c) => c.data).join('')).toBe('a'.repeat(1000));
    expect(console.maxBufferedBytes).toBeLessThanOrEqual(300);
  });

  it('flushes a small batch after flushMs without waiting for more', async () => {
    const { console, chunks } = make({ flushMs: 5 });
    await write(console.stdout, 'tick\n');
    expect(chunks).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 30));
    expect(chunks.map((c) => c.data)).toEqual(['tick\n']);
    await console.close();
  });
});
