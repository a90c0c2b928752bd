import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';

/** Where a job's source comes from: a repository git can fetch and a ref in it. */
export interface SourceSpec {
  readonly git: string;
  readonly ref: string;
}

export interface SourceDeps {
  /** The worker's work dir; mirrors live in `<workDir>/git-mirrors`. */
  readonly workDir: string;
  /** A hung remote must not hold a run forever. */
  readonly timeoutMs: number;
  readonly env?: NodeJS.ProcessEnv;
}

/** A git command failed: the run ends `error` with git's own words. */
export class SourceError extends Error {
  readonly code = 'SOURCE' as const;
  constructor(message: string) {
    super(message);
    this.name = 'SourceError';
  }
}

/**
 * Keeps one bare mirror per repository so a second run fetches only what is
 * new, and checks commits out of it into run directories. Fetches of one
 * mirror are serialized: two runs of one worker must not fetch it at once.
 */
export class Sources {
  readonly #deps: SourceDeps;
  readonly #locks = new Map<string, Promise<unknown>>();

  constructor(deps: SourceDeps) {
    this.#deps = deps;
  }

  /** `<workDir>/git-mirrors/<sha256 of the URL>.git` */
  mirrorPath(url: string): string {
    const hash = createHash('sha256').update(url).digest('hex');
    return join(this.#deps.workDir, 'git-mirrors', `${hash}.git`);
  }

  /** Brings the mirror up to date and resolves the ref to a commit SHA; `signal` stops git (a cancel). */
  async fetch(spec: SourceSpec, signal?: AbortSignal): Promise<string> {
    const mirror = this.mirrorPath(spec.git);
    const what = `cannot fetch ${spec.git}`;
    return this.#locked(mirror, async () => {
      if (await exists(join(mirror, 'HEAD'))) {
        await this.#git(['--git-dir', mirror, 'fetch', '--prune', '--quiet', 'origin'], what, { signal });
      } else {
        // cloned aside and renamed: a worker killed mid-clone leaves no half mirror that looks whole
        const partial = `${mirror}.partial`;
        await mkdir(join(this.#deps.workDir, 'git-mirrors'), { recursive: true });
        await rm(partial, { recursive: true, force: true });
        try {
          await this.#git(['clone', '--mirror', '--quiet', '--', spec.git, partial], what, { signal });
          await rename(partial, mirror);
        } finally {
          await rm(partial, { recursive: true, force: true });
        }
      }
      const out = await this.#git(
        ['--git-dir', mirror, 'rev-parse', '--verify', '--quiet', '--end-of-options', `${spec.ref}^{commit}`],
        `${what}: no commit for ref ${JSON.stringify(spec.ref)}`,
      );
      // the mirror's own time says when a run last used it (expire() goes by it)
      const now = new Date();
      await utimes(mirror, now, now);
      return out.trim();
    });
  }

  /**
   * Remove the mirrors no run used for `maxAgeMs` (a repository jobs no longer build would be kept
   * forever otherwise) and what an interrupted clone left; each under its lock, so a fetch that
   * starts meanwhile waits and then clones anew. Returns the paths removed.
   */
  async expire(maxAgeMs: number, now = Date.now()): Promise<string[]> {
    const dir = join(this.#deps.workDir, 'git-mirrors');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return []; // no source fetched yet
    }
    const removed: string[] = [];
    for (const name of names) {
      const path = join(dir, name);
      if (name.endsWith('.git.partial')) {
        if (!this.#locks.has(path.slice(0, -'.partial'.length))) {
          await rm(path, { recursive: true, force: true });
          removed.push(path);
        }
        continue;
      }
      if (!name.endsWith('.git')) continue;
      await this.#locked(path, async () => {
        const st = await stat(path).catch(() => undefined);
        if (!st || now - st.mtimeMs < maxAgeMs) return;
        await rm(path, { recursive: true, force: true });
        removed.push(path);
      });
    }
    return removed;
  }

  /** Writes the tree of `commit` into `dir` (created; no .git inside: the job builds files, not history). */
  async checkout(spec: SourceSpec, commit: string, dir: string): Promise<void> {
    const mirror = this.mirrorPath(spec.git);
    await mkdir(dir, { recursive: true });
    // an index of its own: the mirror's would be shared by every run checking out at once
    const index = `${dir}.git-index`;
    try {
      await this.#git(
        ['--git-dir', mirror, '--work-tree', dir, 'checkout', '--force', '--quiet', commit, '--', '.'],
        `cannot check out ${commit}`,
        { env: { GIT_INDEX_FILE: index } },
      );
    } finally {
      await rm(index, { force: true });
    }
  }

  #git(
    args: string[],
    what: string,
    opts: { env?: Record<string, string>; signal?: AbortSignal | undefined } = {},
  ): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        'git',
        args,
        {
          timeout: this.#deps.timeoutMs,
          killSignal: 'SIGKILL',
          maxBuffer: 16 * 1024 * 1024,
          env: {
            ...(this.#deps.env ?? process.env),
            // never ext:: (a command run here, outside any sandbox) or another exotic transport
            GIT_ALLOW_PROTOCOL: 'file:git:http:https:ssh',
            GIT_TERMINAL_PROMPT: '0',
            GIT_ASKPASS: 'true',
            LC_ALL: 'C',
            ...opts.env,
          },
          ...(opts.signal && { signal: opts.signal }),
        },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout);
          const line = firstLine(stderr);
          if (opts.signal?.aborted) return reject(new SourceError(`${what}: stopped`));
          if (err.killed) return reject(new SourceError(`${what}: git timed out after ${this.#deps.timeoutMs} ms`));
          reject(new SourceError(line ? `${what}: ${line}` : what));
        },
      );
    });
  }

  async #locked<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = this.#locks.get(key) ?? Promise.resolve();
    const mine = before.catch(() => undefined).then(work);
    this.#locks.set(key, mine);
    try {
      return await mine;
    } finally {
      if (this.#locks.get(key) === mine) this.#locks.delete(key);
    }
  }
}

function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0) ?? ''
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
