import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from 'tar';
import { afterAll, describe, expect, it } from 'vitest';
import { readTar, type TarHead } from './tar-reader.ts';

const dir = mkdtempSync(join(tmpdir(), 'tar-reader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function tarOf(files: string[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of create({ cwd: dir, portable: true }, files) as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Feed `buf` in pieces of `size` bytes, so headers and bodies straddle chunk boundaries. */
async function* pieces(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function read(buf: Buffer, size = 7): Promise<{ head: TarHead; data: string }[]> {
  const out: { head: TarHead; data: string }[] = [];
  await readTar(pieces(buf, size), async (head) => {
    const parts: Buffer[] = [];
    return {
      data: (c) => void parts.push(Buffer.from(c)),
      end: () => void out.push({ head, data: Buffer.concat(parts).toString() }),
    };
  });
  return out;
}

describe('readTar', () => {
  const long = `${'d'.repeat(120)}/${'f'.repeat(150)}.txt`;
  mkdirSync(join(dir, 'd'.repeat(120)));
  writeFileSync(join(dir, long), 'long name');
  writeFileSync(join(dir, 'a.txt'), 'hello');
  writeFileSync(join(dir, 'ünï.txt'), 'unicode');
  writeFileSync(join(dir, 'empty'), '');
  symlinkSync('/etc/passwd', join(dir, 'link'));

  it('reads what node-tar writes: ustar, pax long and non-ASCII names, empty files, links', async () => {
    for (const size of [1, 7, 512, 100_000]) {
      const entries = await read(await tarOf(['a.txt', long, 'ünï.txt', 'empty', 'link']), size);
      expect(entries.map((e) => [e.head.path, e.head.type, e.data])).toEqual([
        ['a.txt', 'File', 'hello'],
        [long, 'File', 'long name'],
        ['ünï.txt', 'File', 'unicode'],
        ['empty', 'File', ''],
        ['link', 'SymbolicLink', ''],
      ]);
      expect(entries[4]!.head.linkpath).toBe('/etc/passwd');
    }
  });

  it('refuses corruption, truncation and a missing end marker', async () => {
    const good = await tarOf(['a.txt']);
    const corrupt = Buffer.from(good);
    corrupt[10] = corrupt[10]! ^ 0xff;
    await expect(read(corrupt)).rejects.toThrow(/bad checksum/);
    await expect(read(good.subarray(0, 600))).rejects.toThrow(/truncated/);
    await expect(read(good.subarray(0, 1024))).rejects.toThrow(/without its end-of-archive/);
    await expect(read(Buffer.from('x'.repeat(2000)))).rejects.toThrow(/bad checksum/);
  });
});
