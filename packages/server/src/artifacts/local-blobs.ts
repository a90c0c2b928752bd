import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { SHA256_PATTERN } from '@builder/protocol';
import {
  BlobDamagedError,
  BlobNotFoundError,
  blobKey,
  quarantineName,
  type BlobInfo,
  type BlobStore,
} from './blob-store.ts';

/**
 * Blobs as files `DIR/ab/abcdef…`. A put is fsync, rename, fsync of the directory: a blob is either
 * whole and on disk or absent, whatever dies when. Damaged blobs go to `quarantineDir` (same file
 * system, so moving one is a rename).
 */
export class LocalBlobStore implements BlobStore {
  readonly description: string;
  readonly #quarantineDir: string;

  constructor(
    readonly dir: string,
    quarantineDir = join(dir, 'quarantine'),
  ) {
    this.description = `local ${dir}`;
    this.#quarantineDir = quarantineDir;
  }

  #path(sha256: string): string {
    return join(this.dir, ...blobKey(sha256).split('/'));
  }

  async has(sha256: string, size: number): Promise<boolean> {
    try {
      const st = await stat(this.#path(sha256));
      return st.isFile() && st.size === size;
    } catch {
      return false;
    }
  }

  async put(sha256: string, file: string, size: number): Promise<boolean> {
    const target = this.#path(sha256);
    const existed = await this.has(sha256, size);
    // flushed and measured through one descriptor: what is checked is what reached the disk
    const fh = await open(file, 'r+');
    try {
      await fh.sync();
      const { size: onDisk } = await fh.stat();
      if (onDisk !== size) throw new Error(`staged blob ${sha256} has ${onDisk} bytes on disk, ${size} expected`);
    } finally {
      await fh.close();
    }
    const made = await mkdir(dirname(target), { recursive: true });
    if (made !== undefined) await syncDir(dirname(made));
    // replacing an existing copy is harmless (same content) and renews its time, so a vacuum
    // running now sees it as fresh and leaves it until the run's rows are recorded
    await rename(file, target);
    await syncDir(dirname(target));
    return !existed;
  }

  async open(sha256: string, size: number, range?: { start: number; end: number }): Promise<Readable> {
    let fh;
    try {
      fh = await open(this.#path(sha256), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(sha256);
      throw err;
    }
    try {
      const st = await fh.stat();
      if (st.size !== size) throw new BlobDamagedError(sha256, st.size, size);
    } catch (err) {
      await fh.close();
      throw err;
    }
    return createReadStream('', { fd: fh, ...(range ? { start: range.start, end: range.end } : {}) });
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
          yield { sha256: name, size: st.size, modifiedAt: st.mtimeMs, version: String(st.ino) };
        } catch {
          // removed meanwhile
        }
      }
    }
  }

  async quarantine(blob: BlobInfo): Promise<string | undefined> {
    const path = this.#path(blob.sha256);
    const ino = await inode(path);
    if (ino !== blob.version) return undefined;
    await mkdir(this.#quarantineDir, { recursive: true });
    const to = join(this.#quarantineDir, quarantineName(blob.sha256));
    try {
      await rename(path, to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // deleted meanwhile
      throw err;
    }
    // a good copy put between the check and the rename is what moved: it goes back, the bad one
    // it replaced is gone already
    if ((await inode(to)) !== blob.version) {
      await rename(to, path);
      return undefined;
    }
    await syncDir(dirname(path));
    return to;
  }
}

async function inode(path: string): Promise<string | undefined> {
  try {
    return String((await stat(path)).ino);
  } catch {
    return undefined;
  }
}

/** Make a rename or a new entry in `dir` durable (on Linux a directory is fsynced through an fd). */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
