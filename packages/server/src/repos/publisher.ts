import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { BlobStore } from '../artifacts/blob-store.ts';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { RunEvents } from '../run-events.ts';
import type { GroupCommit } from '../store/group-commit.ts';
import type { RunRow } from '../store/rows.ts';
import type { Generation, IndexFile, PackageFileRow, PublishedPackage, RepoRow, RepoStore } from '../store/repos.ts';
import { aptIndices, poolPath, type DebEntry } from './apt-index.ts';
import { NotAPackageError, readDebControl } from './deb.ts';
import { MAX_PKG_BYTES, pkgCatalogue, readPkgManifest } from './freebsd-pkg.ts';
import type { RepoKeys } from './signing.ts';

/** Generations of a repository's indices kept: a client that read an older Release still finds its Packages by hash. */
export const KEEP_GENERATIONS = 3;

export interface PublisherDeps {
  repos: RepoStore;
  blobs: BlobStore;
  commit: Pick<GroupCommit, 'write' | 'then'>;
  events: Pick<RunEvents, 'subscribe'>;
  clock: Clock;
  logger: Logger;
  /** Read the keys, or make them (the first time a repository or the key is asked for). */
  loadKeys: () => Promise<RepoKeys>;
  /** Where index files live, one per SHA-256: `DATA/repos/files`. */
  filesDir: string;
}

/**
 * Keeps every repository's indices in step with the runs that feed it. After a run of one of its
 * jobs succeeded (its batch committed), the package files of its runs are read once each (what a
 * blob is lands in package_files), the last N versions of each package chosen, and when that
 * differs from what is published a new generation is written: index files first (content-addressed
 * under DATA/repos/files, fsynced), then the generation row, so a reader sees either the old Release
 * or the new one with all it refers to. At start every repository is checked against the database
 * and its files (lost or changed index files are written again), so a crash between a run's commit
 * and its publication leaves nothing stale.
 */
export class RepoPublisher {
  private queue: Promise<void> = Promise.resolve();
  private readonly waiting = new Set<string>();
  private loadedKeys: RepoKeys | undefined;
  private loading: Promise<RepoKeys> | undefined;

  constructor(private readonly deps: PublisherDeps) {
    mkdirSync(deps.filesDir, { recursive: true });
    for (const f of readdirSync(deps.filesDir)) if (f.endsWith('.tmp')) unlinkSync(join(deps.filesDir, f));
  }

  /** The signing keys, once read or made. */
  get keys(): Promise<RepoKeys> {
    if (!this.loading) {
      this.loading = this.deps.loadKeys();
      this.loading.then(
        (k) => (this.loadedKeys = k),
        (err: unknown) => {
          this.loading = undefined;
          this.deps.logger.error('repo.keys_failed', { error: String(err) });
        },
      );
    }
    return this.loading;
  }

  /** The signing keys if they are ready (a page shows them without waiting, and has them made). */
  keysNow(): RepoKeys | undefined {
    if (!this.loadedKeys) void this.keys.catch(() => {});
    return this.loadedKeys;
  }

  /** Follow succeeded runs, and bring every repository up to date with the database. */
  start(): void {
    this.deps.events.subscribe((e) => {
      if (e.type === 'ended' && e.run.state === 'succeeded') this.runSucceeded(e.run);
    });
    for (const r of this.deps.repos.list()) void this.update(r.name, true);
  }

  /** A run (finished, or uploaded) succeeded with its files recorded: republish what it feeds. */
  runSucceeded(run: Pick<RunRow, 'jobId' | 'platform'>): void {
    for (const r of this.deps.repos.forRun(run.jobId, run.platform)) void this.update(r.name);
  }

  /**
   * Bring one repository up to date; resolves once published (or found current). One publication
   * at a time; asks made while one waits are folded into it.
   */
  update(name: string, verify = false): Promise<void> {
    const key = `${name}\0${verify}`;
    if (this.waiting.has(key)) return this.queue;
    this.waiting.add(key);
    this.queue = this.queue.then(async () => {
      this.waiting.delete(key);
      try {
        await this.publish(name, verify);
      } catch (err) {
        this.deps.logger.error('repo.publish_failed', { repo: name, error: String((err as Error).stack ?? err) });
      }
    });
    return this.queue;
  }

  /** Resolves once every update asked for so far is done (tests, shutdown). */
  idle(): Promise<void> {
    return this.queue;
  }

  private async publish(name: string, verify: boolean): Promise<void> {
    const { repos, clock, logger } = this.deps;
    const repo = repos.get(name);
    if (!repo) return;
    const packages = await this.choose(repo);
    const generations = repos.generations(repo.id);
    const current = generations.at(-1);
    // suite or component changed: the same packages need indices at their new paths
    const sameLayout =
      current !== undefined &&
      Object.keys(current.files).some((p) => p.startsWith(`dists/${repo.suite}/${repo.component}/`));
    const same = current !== undefined && sameLayout && samePackages(current.packages, packages);
    if (same && !(verify && !this.intact(current))) return;
    const keys = await this.keys;
    const now = clock.now();
    const files = await this.indexFiles(repo, packages, keys, now);
    const recorded: Record<string, IndexFile> = {};
    for (const [path, bytes] of files) recorded[path] = await this.store(bytes);
    const generation: Generation = {
      generation: (current?.generation ?? 0) + 1,
      createdAt: now,
      files: recorded,
      packages,
    };
    this.deps.commit.write(() => repos.addGeneration(repo.id, generation, KEEP_GENERATIONS));
    await new Promise<void>((resolve) => this.deps.commit.then(resolve, resolve));
    logger.info('repo.published', { repo: name, generation: generation.generation, packages: packages.length });
    await this.sweep();
  }

  /** The packages to publish: per package and architecture, the `keep` newest versions, newest run first. */
  private async choose(repo: RepoRow): Promise<PublishedPackage[]> {
    const chosen: PublishedPackage[] = [];
    const versions = new Map<string, Set<string>>();
    for (const c of this.deps.repos.candidates(repo.id)) {
      const f = await this.packageFile(c.sha256, c.size, c.path.endsWith('.deb') ? 'deb' : 'pkg', c.path, c.runId);
      if (!f || f.problem !== null || !f.name || !f.version || !f.arch) continue;
      const key = `${f.kind}\0${f.name}\0${f.arch}`;
      const seen = versions.get(key) ?? new Set<string>();
      versions.set(key, seen);
      if (seen.has(f.version) || seen.size >= repo.keep) continue;
      seen.add(f.version);
      chosen.push({
        kind: f.kind,
        name: f.name,
        version: f.version,
        arch: f.arch,
        filename:
          f.kind === 'deb'
            ? poolPath(repo.component, f.name, f.version, f.arch)
            : `pkg/${f.arch}/All/${f.name}-${f.version}.pkg`,
        sha256: c.sha256,
        size: c.size,
        runId: c.runId,
        job: c.job,
        number: c.number,
      });
    }
    return chosen.sort((a, b) => a.filename.localeCompare(b.filename));
  }

  /** What a blob is, read once and kept; undefined when its bytes cannot be read now (tried again next time). */
  private async packageFile(
    sha256: string,
    size: number,
    kind: 'deb' | 'pkg',
    path: string,
    runId: string,
  ): Promise<PackageFileRow | undefined> {
    const known = this.deps.repos.packageFile(sha256);
    if (known) return known;
    let row: PackageFileRow;
    try {
      if (kind === 'deb') {
        const stream = await this.deps.blobs.open(sha256, size);
        try {
          const c = await readDebControl(stream as AsyncIterable<Buffer>);
          row = { sha256, kind, name: c.name, version: c.version, arch: c.arch, fields: c.paragraph, problem: null };
        } finally {
          stream.destroy();
        }
      } else {
        if (size > MAX_PKG_BYTES) throw new NotAPackageError(`larger than ${MAX_PKG_BYTES} bytes: not read`);
        const m = readPkgManifest(await readAll(await this.deps.blobs.open(sha256, size)));
        row = {
          sha256,
          kind,
          name: m.name,
          version: m.version,
          arch: m.abi,
          fields: JSON.stringify(m.manifest),
          problem: null,
        };
      }
    } catch (err) {
      if (!(err instanceof NotAPackageError)) {
        this.deps.logger.error('repo.package_unreadable', { sha256, path, error: String(err) });
        return undefined;
      }
      row = { sha256, kind, name: null, version: null, arch: null, fields: null, problem: err.message };
      this.deps.logger.warn('repo.package_refused', { run: runId, path, sha256, problem: err.message });
    }
    this.deps.commit.write(() => this.deps.repos.recordPackageFile(row, this.deps.clock.now()));
    return row;
  }

  private async indexFiles(
    repo: RepoRow,
    packages: readonly PublishedPackage[],
    keys: RepoKeys,
    now: number,
  ): Promise<Map<string, Buffer>> {
    const debs: DebEntry[] = [];
    const pkgs = new Map<string, { manifest: Record<string, unknown>; path: string; sha256: string; size: number }[]>();
    for (const p of packages) {
      const f = this.deps.repos.packageFile(p.sha256);
      if (!f?.fields) continue;
      if (p.kind === 'deb') debs.push({ ...p, paragraph: f.fields });
      else {
        const list = pkgs.get(p.arch) ?? [];
        pkgs.set(p.arch, list);
        list.push({
          manifest: JSON.parse(f.fields) as Record<string, unknown>,
          path: p.filename.slice(`pkg/${p.arch}/`.length),
          sha256: p.sha256,
          size: p.size,
        });
      }
    }
    const files = aptIndices(repo, debs, new Date(now));
    const releasePath = `dists/${repo.suite}/Release`;
    const release = files.get(releasePath)!;
    files.set(`dists/${repo.suite}/InRelease`, Buffer.from(await keys.clearsign(release.toString('utf8'))));
    files.set(`${releasePath}.gpg`, Buffer.from(await keys.detachSign(release)));
    for (const [abi, entries] of pkgs) {
      for (const [path, bytes] of pkgCatalogue(entries, (b) => keys.pkgSign(b), now))
        files.set(`pkg/${abi}/${path}`, bytes);
    }
    return files;
  }

  /** Whether every file of a generation is on disk with its SHA-256 (checked at start). */
  private intact(g: Generation): boolean {
    for (const f of Object.values(g.files)) {
      try {
        const bytes = readFileSync(join(this.deps.filesDir, f.sha256));
        if (bytes.length !== f.size || createHash('sha256').update(bytes).digest('hex') !== f.sha256) return false;
      } catch {
        return false;
      }
    }
    return true;
  }

  /** Write an index file under its SHA-256 (fsynced, then renamed into place), unless it is there. */
  private async store(bytes: Buffer): Promise<IndexFile> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const dest = join(this.deps.filesDir, sha256);
    const tmp = `${dest}.${randomBytes(4).toString('hex')}.tmp`;
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, dest);
    const dir = await open(this.deps.filesDir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    return { sha256, size: bytes.length };
  }

  /** Delete index files no kept generation refers to. */
  private async sweep(): Promise<void> {
    const keep = this.deps.repos.referencedIndexFiles();
    for (const f of await readdir(this.deps.filesDir)) {
      if (/^[0-9a-f]{64}$/.test(f) && !keep.has(f)) await unlink(join(this.deps.filesDir, f)).catch(() => {});
    }
  }
}

function samePackages(a: readonly PublishedPackage[], b: readonly PublishedPackage[]): boolean {
  const key = (p: PublishedPackage) => `${p.filename}\0${p.sha256}\0${p.runId}`;
  return a.length === b.length && a.every((p, i) => key(p) === key(b[i]!));
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
