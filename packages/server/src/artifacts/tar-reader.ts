import { Header, Pax, type types } from 'tar';

export type EntryType = types.EntryTypeName;

export interface TarHead {
  path: string;
  type: EntryType;
  size: number;
  linkpath: string | undefined;
}

/** Where one entry's bytes go; awaited chunk by chunk, so a slow sink slows the sender. */
export interface EntrySink {
  data(chunk: Buffer): void | Promise<void>;
  end(): void | Promise<void>;
}

export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

const BLOCK = 512;
const MAX_META = 1024 * 1024;

/**
 * A strict streaming tar reader: headers are decoded by the `tar` package (ustar, pax and GNU
 * long names), the entries' bytes are handed on as slices of the received chunks without copies
 * or buffering. node-tar's own Parser costs about 2.5 s of CPU per GiB here, which made it the
 * bottleneck of artifact transfers. Checksums, truncation and a missing end marker are errors.
 */
export async function readTar(source: AsyncIterable<Buffer>, onEntry: (head: TarHead) => Promise<EntrySink>) {
  const r = new ChunkReader(source);
  try {
    await readEntries(r, onEntry);
  } catch (err) {
    await r.close(); // let go of the source, so its owner can drain or close it
    throw err;
  }
}

async function readEntries(r: ChunkReader, onEntry: (head: TarHead) => Promise<EntrySink>): Promise<void> {
  let pax: Pax | undefined;
  let globalPax: Pax | undefined;
  let longPath: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await r.exact(BLOCK);
    if (!block) throw new TarFormatError('the tar ended without its end-of-archive blocks');
    if (isZero(block)) return; // end of archive (the second zero block and any padding are ignored)
    const h = new Header(block);
    if (!h.cksumValid) throw new TarFormatError('a tar header has a bad checksum (not a tar stream, or corrupted)');
    const size = h.size ?? 0;
    const type = h.type;
    if (
      type === 'ExtendedHeader' ||
      type === 'GlobalExtendedHeader' ||
      type === 'NextFileHasLongPath' ||
      type === 'OldGnuLongPath' ||
      type === 'NextFileHasLongLinkpath'
    ) {
      if (size > MAX_META) throw new TarFormatError(`a tar metadata entry is ${size} bytes, over ${MAX_META}`);
      const body = await r.exact(size);
      if (!body) throw new TarFormatError('the tar ended inside a metadata entry');
      await r.skip(padding(size));
      const text = body.toString('utf8');
      if (type === 'ExtendedHeader') pax = Pax.parse(text, globalPax);
      else if (type === 'GlobalExtendedHeader') globalPax = Pax.parse(text, globalPax, true);
      else if (type === 'NextFileHasLongLinkpath') longLink = text.replace(/\0.*$/s, '');
      else longPath = text.replace(/\0.*$/s, '');
      continue;
    }
    const entrySize = pax?.size ?? globalPax?.size ?? size;
    const head: TarHead = {
      path: pax?.path ?? longPath ?? h.path ?? '',
      type,
      size: entrySize,
      linkpath: pax?.linkpath ?? longLink ?? h.linkpath,
    };
    pax = undefined;
    longPath = undefined;
    longLink = undefined;
    const sink = await onEntry(head);
    // links, directories and devices carry no data, whatever their size field says
    const dataSize = type === 'File' || type === 'OldFile' || type === 'ContiguousFile' ? entrySize : 0;
    for await (const chunk of r.stream(dataSize)) await sink.data(chunk);
    await sink.end();
    await r.skip(padding(dataSize));
  }
}

const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

function isZero(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** Pull bytes from an async source: exact reads for headers, zero-copy slices for bodies. */
class ChunkReader {
  readonly #it: AsyncIterator<Buffer>;
  #buf: Buffer = Buffer.alloc(0);
  #done = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  async #more(): Promise<boolean> {
    if (this.#done) return false;
    const next = await this.#it.next();
    if (next.done) {
      this.#done = true;
      return false;
    }
    this.#buf = this.#buf.length === 0 ? next.value : Buffer.concat([this.#buf, next.value]);
    return true;
  }

  /** Exactly n bytes; undefined at a clean end (nothing left); an error at a partial one. */
  async exact(n: number): Promise<Buffer | undefined> {
    while (this.#buf.length < n) {
      if (!(await this.#more())) {
        if (this.#buf.length === 0) return undefined;
        throw new TarFormatError('the tar stream is truncated');
      }
    }
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#buf.length === 0 && !(await this.#more())) throw new TarFormatError('the tar stream is truncated');
      const take = Math.min(left, this.#buf.length);
      const out = this.#buf.subarray(0, take);
      this.#buf = this.#buf.subarray(take);
      left -= take;
      yield out;
    }
  }

  async close(): Promise<void> {
    if (!this.#done) await this.#it.return?.();
    this.#done = true;
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n)) void _;
  }
}
