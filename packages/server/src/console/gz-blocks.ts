import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzipSync, gzip as gzipCb } from 'node:zlib';

const gzip = promisify(gzipCb);

/**
 * A finished console on disk: gzip members of BLOCK raw bytes each (the last one shorter), so a
 * range is read by inflating only the blocks it covers. Each member's header carries its own
 * length in an extra field (subfield "BL", as BGZF does with "BC"), so the blocks are found by
 * hopping from header to header. The file stays plain gzip: `zcat RUN.log.gz` prints the log.
 */
export const BLOCK = 256 * 1024;

const HEADER = 20; // 10 bytes gzip header, XLEN, subfield id, length, the member's size
const SUBFIELD = Buffer.from('BL', 'latin1');

/** One member for `raw` (at most BLOCK bytes): zlib's deflate and trailer behind our header. */
async function member(raw: Buffer): Promise<Buffer> {
  const plain = await gzip(raw);
  // zlib writes a 10-byte header without optional fields (FLG 0): swap it for one with FEXTRA
  if (plain[3] !== 0) throw new Error('unexpected gzip header from zlib');
  const out = Buffer.alloc(HEADER + plain.length - 10);
  plain.copy(out, 0, 0, 10);
  out[3] = 0x04; // FEXTRA
  out.writeUInt16LE(8, 10); // XLEN
  SUBFIELD.copy(out, 12);
  out.writeUInt16LE(4, 14);
  out.writeUInt32LE(out.length, 16);
  plain.copy(out, HEADER, 10);
  return out;
}

/**
 * Write the first `length` bytes of the raw console `src` as block gzip to `dst` (created, must
 * not exist) and fsync it. Asynchronous and a block at a time: the server goes on meanwhile.
 * Rejects if `src` holds fewer than `length` bytes.
 */
export async function compressConsole(src: string, dst: string, length: number): Promise<void> {
  const input = await open(src, 'r');
  try {
    const output = await open(dst, 'wx', 0o600);
    try {
      let pos = 0;
      do {
        const want = Math.min(BLOCK, length - pos);
        const buf = Buffer.alloc(want);
        let got = 0;
        while (got < want) {
          const { bytesRead } = await input.read(buf, got, want - got, pos + got);
          if (bytesRead === 0) throw new Error(`${src} is shorter than its recorded ${length} bytes`);
          got += bytesRead;
        }
        const m = await member(buf);
        await output.write(m, 0, m.length);
        pos += want;
      } while (pos < length);
      await output.sync();
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}

/** Where each block starts in a block gzip file, and the raw length it holds. */
export interface BlockIndex {
  offsets: number[];
  sizes: number[];
  total: number;
}

export class NotBlockGzipError extends Error {
  constructor(file: string, at: number) {
    super(`${file}: not a builder console gzip (bad block header at byte ${at})`);
  }
}

/** Read the block layout of an open block gzip file (one small read per block). */
export function readIndex(fd: number, file: string): BlockIndex {
  const size = fstatSync(fd).size;
  const offsets: number[] = [];
  const sizes: number[] = [];
  const head = Buffer.alloc(HEADER);
  let pos = 0;
  while (pos < size) {
    const n = readSync(fd, head, 0, HEADER, pos);
    if (
      n !== HEADER ||
      head[0] !== 0x1f ||
      head[1] !== 0x8b ||
      head[3] !== 0x04 ||
      head.readUInt16LE(10) !== 8 ||
      !head.subarray(12, 14).equals(SUBFIELD)
    ) {
      throw new NotBlockGzipError(file, pos);
    }
    const len = head.readUInt32LE(16);
    if (len <= HEADER + 8 || pos + len > size) throw new NotBlockGzipError(file, pos);
    offsets.push(pos);
    sizes.push(len);
    pos += len;
  }
  if (offsets.length === 0) throw new NotBlockGzipError(file, 0);
  const tail = Buffer.alloc(4);
  readSync(fd, tail, 0, 4, size - 4);
  const total = (offsets.length - 1) * BLOCK + tail.readUInt32LE(0);
  return { offsets, sizes, total };
}

/** Inflate block `n` (its CRC checked by zlib). */
export function readBlock(fd: number, index: BlockIndex, n: number): Buffer {
  const len = index.sizes[n]!;
  const buf = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const r = readSync(fd, buf, got, len - got, index.offsets[n]! + got);
    if (r === 0) break;
    got += r;
  }
  return gunzipSync(buf.subarray(0, got));
}

/** A whole block gzip file's raw bytes `offset`..`offset+length` (for tests and tools). */
export function readRange(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const index = readIndex(fd, file);
    const parts: Buffer[] = [];
    const end = Math.min(index.total, offset + length);
    for (let pos = offset; pos < end;) {
      const n = Math.floor(pos / BLOCK);
      const block = readBlock(fd, index, n);
      const from = pos - n * BLOCK;
      const part = block.subarray(from, Math.min(block.length, end - n * BLOCK));
      parts.push(part);
      pos += part.length;
    }
    return Buffer.concat(parts);
  } finally {
    closeSync(fd);
  }
}
