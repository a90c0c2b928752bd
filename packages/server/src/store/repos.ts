import type { Db } from './db.ts';

export interface RepoSource {
  job: string;
  jobId: number;
  /** '' for every platform of the job. */
  platform: string;
}

export interface RepoRow {
  id: number;
  name: string;
  suite: string;
  component: string;
  keep: number;
  createdAt: number;
  updatedAt: number;
  sources: RepoSource[];
}

/** What a .deb or .pkg blob is; `problem` set when it is not a valid package. */
export interface PackageFileRow {
  sha256: string;
  kind: 'deb' | 'pkg';
  name: string | null;
  version: string | null;
  arch: string | null;
  fields: string | null;
  problem: string | null;
}

/** A package file some succeeded run of a repository's jobs made, newest run first. */
export interface RepoCandidate {
  runId: string;
  job: string;
  number: number;
  platform: string;
  finishedAt: number;
  path: string;
  size: number;
  sha256: string;
}

export interface IndexFile {
  sha256: string;
  size: number;
}

/** One package as a generation publishes it. */
export interface PublishedPackage {
  kind: 'deb' | 'pkg';
  name: string;
  version: string;
  arch: string;
  /** Path under the repository's URL: `pool/main/h/hello/hello_1.0_amd64.deb` or `pkg/ABI/All/x-1.pkg`. */
  filename: string;
  sha256: string;
  size: number;
  runId: string;
  job: string;
  number: number;
}

export interface Generation {
  generation: number;
  createdAt: number;
  files: Record<string, IndexFile>;
  packages: PublishedPackage[];
}

/** Repositories, the jobs that feed them, what their package files are, and the indices published. */
export class RepoStore {
  // read with every run that succeeds (which repositories it feeds): prepared once
  private readonly listStmt;
  private readonly sourcesStmt;

  constructor(private readonly db: Db) {
    this.listStmt = db.prepare<[], Omit<RepoRow, 'sources'>>(
      `SELECT id, name, suite, component, keep, created_at AS createdAt, updated_at AS updatedAt
         FROM repos ORDER BY name`,
    );
    this.sourcesStmt = db.prepare<[number], RepoSource>(
      `SELECT j.name AS job, s.job_id AS jobId, s.platform FROM repo_sources s JOIN jobs j ON j.id = s.job_id
         WHERE s.repo_id = ? ORDER BY j.name, s.platform`,
    );
  }

  get(name: string): RepoRow | undefined {
    const row = this.db
      .prepare<[string], Omit<RepoRow, 'sources'>>(
        `SELECT id, name, suite, component, keep, created_at AS createdAt, updated_at AS updatedAt
         FROM repos WHERE name = ?`,
      )
      .get(name);
    return row && { ...row, sources: this.sources(row.id) };
  }

  list(): RepoRow[] {
    const rows = this.listStmt.all();
    return rows.map((r) => ({ ...r, sources: this.sources(r.id) }));
  }

  /** Repositories one of whose sources is this job (on this platform or on every one). */
  forRun(jobId: number, platform: string): RepoRow[] {
    return this.list().filter((r) =>
      r.sources.some((s) => s.jobId === jobId && (s.platform === '' || s.platform === platform)),
    );
  }

  private sources(repoId: number): RepoSource[] {
    return this.sourcesStmt.all(repoId);
  }

  /** Create or replace a repository's settings and sources; true when it is new. Call inside a write batch. */
  set(
    spec: {
      name: string;
      suite: string;
      component: string;
      keep: number;
      sources: { jobId: number; platform: string }[];
    },
    now: number,
  ): boolean {
    const existing = this.db.prepare<[string], { id: number }>('SELECT id FROM repos WHERE name = ?').get(spec.name);
    let id: number;
    if (existing) {
      id = existing.id;
      this.db
        .prepare('UPDATE repos SET suite = ?, component = ?, keep = ?, updated_at = ? WHERE id = ?')
        .run(spec.suite, spec.component, spec.keep, now, id);
      this.db.prepare('DELETE FROM repo_sources WHERE repo_id = ?').run(id);
    } else {
      id = Number(
        this.db
          .prepare('INSERT INTO repos (name, suite, component, keep, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
          .run(spec.name, spec.suite, spec.component, spec.keep, now, now).lastInsertRowid,
      );
    }
    const add = this.db.prepare('INSERT OR IGNORE INTO repo_sources (repo_id, job_id, platform) VALUES (?, ?, ?)');
    for (const s of spec.sources) add.run(id, s.jobId, s.platform);
    return !existing;
  }

  /** Remove a repository and its generations; false when there was none. */
  remove(name: string): boolean {
    return this.db.prepare('DELETE FROM repos WHERE name = ?').run(name).changes > 0;
  }

  /**
   * Every .deb and .pkg file of the succeeded runs of the repository's sources, newest run first.
   * Runs whose artifacts retention stripped are gone from here, and so from the repository.
   */
  candidates(repoId: number): RepoCandidate[] {
    return this.db
      .prepare<[number], RepoCandidate>(
        `SELECT r.id AS runId, j.name AS job, r.number, r.platform, r.finished_at AS finishedAt,
                a.path, a.size, a.sha256
         FROM repo_sources s
         JOIN jobs j ON j.id = s.job_id
         JOIN runs r ON r.job_id = s.job_id AND (s.platform = '' OR r.platform = s.platform) AND r.state = 'succeeded'
         JOIN artifacts a ON a.run_id = r.id AND (a.path LIKE '%.deb' OR a.path LIKE '%.pkg')
         WHERE s.repo_id = ?
         GROUP BY r.id, a.path
         ORDER BY r.finished_at DESC, r.number DESC, a.path`,
      )
      .all(repoId);
  }

  /** Package files of the repository's runs that are not valid packages, with why, newest run first. */
  refused(repoId: number): { job: string; number: number; path: string; sha256: string; problem: string }[] {
    const out = [];
    for (const c of this.candidates(repoId)) {
      const problem = this.packageFile(c.sha256)?.problem;
      if (problem) out.push({ job: c.job, number: c.number, path: c.path, sha256: c.sha256, problem });
    }
    return out;
  }

  packageFile(sha256: string): PackageFileRow | undefined {
    return this.db
      .prepare<[string], PackageFileRow>(
        'SELECT sha256, kind, name, version, arch, fields, problem FROM package_files WHERE sha256 = ?',
      )
      .get(sha256);
  }

  /** Record what a blob is (once: the same bytes always read the same). Call inside a write batch. */
  recordPackageFile(f: PackageFileRow, now: number): void {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO package_files (sha256, kind, name, version, arch, fields, problem, read_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(f.sha256, f.kind, f.name, f.version, f.arch, f.fields, f.problem, now);
  }

  /** The generations kept, oldest first. */
  generations(repoId: number): Generation[] {
    return this.db
      .prepare<[number], { generation: number; createdAt: number; files: string; packages: string }>(
        `SELECT generation, created_at AS createdAt, files, packages FROM repo_generations
         WHERE repo_id = ? ORDER BY generation`,
      )
      .all(repoId)
      .map((g) => ({
        generation: g.generation,
        createdAt: g.createdAt,
        files: JSON.parse(g.files) as Record<string, IndexFile>,
        packages: JSON.parse(g.packages) as PublishedPackage[],
      }));
  }

  /** Add a generation and drop those older than the last `keep`. Call inside a write batch. */
  addGeneration(repoId: number, g: Generation, keep: number): void {
    this.db
      .prepare('INSERT INTO repo_generations (repo_id, generation, created_at, files, packages) VALUES (?, ?, ?, ?, ?)')
      .run(repoId, g.generation, g.createdAt, JSON.stringify(g.files), JSON.stringify(g.packages));
    this.db
      .prepare('DELETE FROM repo_generations WHERE repo_id = ? AND generation <= ?')
      .run(repoId, g.generation - keep);
  }

  /** Every index file any kept generation of any repository refers to (the rest may be deleted). */
  referencedIndexFiles(): Set<string> {
    const out = new Set<string>();
    for (const { files } of this.db.prepare<[], { files: string }>('SELECT files FROM repo_generations').all()) {
      for (const f of Object.values(JSON.parse(files) as Record<string, IndexFile>)) out.add(f.sha256);
    }
    return out;
  }
}
