import { createHash, randomUUID } from 'node:crypto';
import {
  chownSync,
  constants,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  type Stats,
} from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@builder/protocol';

/** Where apt keeps the .debs it downloaded, inside the sandbox. */
export const ARCHIVES = 'var/cache/apt/archives';
/** apt's archive file names: `name_version_arch.deb` with `:` as `%3a`. */
const DEB_NAME = /^[A-Za-z0-9.+~%-]+_[A-Za-z0-9.+~%-]+_[A-Za-z0-9%-]+\.deb$/;
const CHUNK = 1 << 20;

/**
 * The worker's package cache for prepare steps: `WORKDIR/apt-cache`, shared by every job of this
 * worker. Before a prepare step its .debs are hard-linked into the run's upper layer at
 * /var/cache/apt/archives, so apt finds them there and downloads only what is missing. They are
 * owned by the host's root, which is outside the sandbox's id range: the sandbox's root reads them
 * and may unlink its own links, but can never change one.
 *
 * After the prepare step (nothing of the sandbox runs then) the .debs apt left in the run's
 * archives go into the cache, each copied aside and renamed in, so two jobs finishing at once at
 * worst both write the same file. Only files whose SHA-256 is what the base's own apt indexes (the
 * base is read-only for jobs, its indexes signed) name for that file are taken: apt trusts a cached
 * .deb of the right size without hashing it again, so a job must not be able to plant one for the
 * next. Without indexes in the base (`debian/mkroot --refresh` writes them) nothing is cached.
 */
export class AptCache {
  readonly dir: string;
  readonly #log: Logger;
  /** The base whose indexes `#index` holds (a refreshed base is another directory). */
  #indexed: string | undefined;
  #index = new Map<string, string>();

  constructor(dir: string, log: Logger) {
    this.dir = dir;
    this.#log = log;
  }

  /**
   * Link the cache's .debs into `upper`/var/cache/apt/archives, its directories made as the base
   * has them (owner and mode). Returns how many.
   */
  seed(base: string, upper: string): number {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    let parent = '';
    for (const part of ARCHIVES.split('/')) {
      parent = parent === '' ? part : `${parent}/${part}`;
      const of = lstatSync(join(base, parent), { throwIfNoEntry: false });
      if (!of?.isDirectory()) return 0; // a base without apt: nothing to seed
      const dir = join(upper, parent);
      if (lstatSync(dir, { throwIfNoEntry: false }) === undefined) {
        mkdirSync(dir, { mode: of.mode & 0o7777 });
        chownSync(dir, of.uid, of.gid);
      }
    }
    let linked = 0;
    for (const name of readdirSync(this.dir)) {
      if (!DEB_NAME.test(name)) continue;
      try {
        linkSync(join(this.dir, name), join(upper, ARCHIVES, name));
        linked++;
      } catch (err) {
        // removed from the cache meanwhile (by hand): apt downloads it
        this.#log.warn('apt_cache.link_failed', { file: name, error: err });
      }
    }
    return linked;
  }

  /** At worker start: copies a crashed worker left half-written (`.new-*`). */
  removePartial(): void {
    let names: string[] = [];
    try {
      names = readdirSync(this.dir);
    } catch {
      return; // no cache yet
    }
    for (const name of names) if (name.startsWith('.new-')) rmSync(join(this.dir, name), { force: true });
  }

  /** Take the new, verified .debs of `upper`'s archives into the cache; what was added and refused. */
  async harvest(base: string, upper: string): Promise<{ added: string[]; refused: string[] }> {
    const added: string[] = [];
    const refused: string[] = [];
    // every component a real directory: the sandbox's root could have put a link anywhere here
    let path = upper;
    for (const part of ARCHIVES.split('/')) {
      path = join(path, part);
      if (!lstatSync(path, { throwIfNoEntry: false })?.isDirectory()) return { added, refused };
    }
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    const cached = new Set(readdirSync(this.dir));
    const fresh = readdirSync(path).filter((n) => DEB_NAME.test(n) && !cached.has(n));
    if (fresh.length === 0) return { added, refused };
    const index = this.#indexOf(base);
    for (const name of fresh) {
      const want = index.get(name);
      if (want === undefined) {
        refused.push(name);
        continue;
      }
      const tmp = join(this.dir, `.new-${randomUUID()}`);
      try {
        const got = await copyHashing(join(path, name), tmp);
        if (got === want) {
          await rename(tmp, join(this.dir, name));
          added.push(name);
        } else refused.push(name);
      } catch (err) {
        this.#log.warn('apt_cache.copy_failed', { file: name, error: err });
        refused.push(name);
      } finally {
        await rm(tmp, { force: true });
      }
    }
    return { added, refused };
  }

  /** File name → SHA-256 of every package in the base's apt indexes (`*_Packages`). */
  #indexOf(base: string): Map<string, string> {
    if (this.#indexed === base) return this.#index;
    const index = new Map<string, string>();
    const lists = join(base, 'var/lib/apt/lists');
    let files: string[] = [];
    try {
      files = readdirSync(lists).filter((f) => f.endsWith('_Packages'));
    } catch {
      // no lists: nothing is trusted
    }
    for (const file of files) {
      const text = readFileSync(join(lists, file), 'latin1');
      for (const stanza of text.split('\n\n')) {
        const field = (name: string) => new RegExp(`^${name}: *(\\S+)$`, 'm').exec(stanza)?.[1];
        const [pkg, version, arch, sha] = [field('Package'), field('Version'), field('Architecture'), field('SHA256')];
        if (pkg && version && arch && sha) index.set(`${quote(pkg)}_${quote(version)}_${quote(arch, '_:.')}.deb`, sha);
      }
    }
    this.#indexed = base;
    this.#index = index;
    return index;
  }
}

/** apt's QuoteString: the `bad` characters, `%`, blanks and non-ASCII as %xx. */
function quote(s: string, bad = '_:'): string {
  let out = '';
  for (const c of s) {
    const code = c.charCodeAt(0);
    const escape = bad.includes(c) || c === '%' || code <= 0x20 || code >= 0x7f;
    out += escape ? `%${code.toString(16).padStart(2, '0')}` : c;
  }
  return out;
}

/** Copy a regular file (never through a link) to `to` (mode 0644, the worker's own), returning its SHA-256. */
async function copyHashing(from: string, to: string): Promise<string> {
  const src = await open(from, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st: Stats = await src.stat();
    if (!st.isFile()) throw new Error(`${from} is not a regular file`);
    const dst = await open(to, 'wx', 0o644);
    try {
      const hash = createHash('sha256');
      const buf = Buffer.alloc(CHUNK);
      for (;;) {
        const { bytesRead } = await src.read(buf, 0, CHUNK, null);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
        await dst.write(buf, 0, bytesRead);
      }
      return hash.digest('hex');
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}
