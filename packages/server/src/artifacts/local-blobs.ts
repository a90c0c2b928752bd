import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { SHA256_PATTERN } from '@builder/protocol';
import { BlobNotFoundError, blobKey, type BlobInfo, type BlobStore } from './blob-store.ts';

/** Blobs as files `DIR/ab/abcdef…`; a put is a rename, so a blob is either whole or absent. */
export class LocalBlobStore implements BlobStore {
  readonly description: string;

  constructor(private readonly dir: string) {
    this.description = `local ${dir}`;
  }

  #path(sha256: string): string {
    return join(this.dir, ...blobKey(sha256).split('/'));
  }

  async has(sha256: string): Promise<boolean> {
    try {
      return (await stat(this.#path(sha256))).isFile();
    } catch {
      return false;
    }
  }

  async put(sha256: string, file: string): Promise<void> {
    const target = this.#path(sha256);
    await mkdir(join(this.dir, sha256.slice(0, 2)), { recursive: true });
    // same content under the same name: replacing an existing copy is harmless and keeps one
    await rename(file, target);
  }

  async open(sha256: string, range?: { start: number; end: number }): Promise<Readable> {
    const path = this.#path(sha256);
    const stream = createReadStream(path, range ? { start: range.start, end: range.end } : {});
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'ENOENT' ? new BlobNotFoundError(sha256) : err),
      );
    });
    return stream;
  }

  async delete(sha256: string): Promise<void> {
    await rm(this.#path(sha256), { force: true });
  }

  async *list(): AsyncIterable<BlobInfo> {
    let prefixes: string[];
    try {
      prefixes = await readdir(this.dir);
    } catch {
      return;
    }
    for (const prefix of prefixes.sort()) {
      if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
      for (const name of (await readdir(join(this.dir, prefix))).sort()) {
        if (!SHA256_PATTERN.test(name) || !name.startsWith(prefix)) continue;
        try {
          const st = await stat(join(this.dir, prefix, name));
          yield { sha256: name, size: st.size, modifiedAt: st.mtimeMs };
        } catch {
          // removed meanwhile
        }
      }
    }
  }
}
