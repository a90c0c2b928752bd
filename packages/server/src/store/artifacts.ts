import type { ArtifactFile } from '@builder/protocol';
import type { Db } from './db.ts';

/** Where a file with a given hash came from. */
export interface ArtifactOrigin extends ArtifactFile {
  runId: string;
  job: string;
  number: number;
  platform: string;
  finishedAt: number | null;
}

/** A run's artifact list, by run; the bytes are in the BlobStore under each file's SHA-256. */
export class ArtifactStore {
  private readonly insertStmt;
  private readonly forRunStmt;
  private readonly fileStmt;
  private readonly bySha;
  private readonly latestStmt;
  private readonly deleteForRun;
  private readonly blobsStmt;

  constructor(db: Db) {
    this.insertStmt = db.prepare('INSERT OR REPLACE INTO artifacts (run_id, path, size, sha256) VALUES (?, ?, ?, ?)');
    this.forRunStmt = db.prepare<[string], ArtifactFile>(
      'SELECT path, size, sha256 FROM artifacts WHERE run_id = ? ORDER BY path',
    );
    this.fileStmt = db.prepare<[string, string], ArtifactFile>(
      'SELECT path, size, sha256 FROM artifacts WHERE run_id = ? AND path = ?',
    );
    this.bySha = db.prepare<[string], ArtifactOrigin>(
      `SELECT a.path, a.size, a.sha256, r.id AS runId, j.name AS job, r.number, r.platform, r.finished_at AS finishedAt
       FROM artifacts a JOIN runs r ON r.id = a.run_id JOIN jobs j ON j.id = r.job_id
       WHERE a.sha256 = ? ORDER BY r.finished_at DESC LIMIT 100`,
    );
    // the latest successful run decides; an older run's copy of the file is not "latest"
    this.latestStmt = db.prepare<[string, string, string | null, string | null], ArtifactOrigin>(
      `SELECT a.path, a.size, a.sha256, r.id AS runId, j.name AS job, r.number, r.platform, r.finished_at AS finishedAt
       FROM runs r JOIN jobs j ON j.id = r.job_id JOIN artifacts a ON a.run_id = r.id AND a.path = ?
       WHERE r.id = (SELECT r2.id FROM runs r2 JOIN jobs j2 ON j2.id = r2.job_id
                     WHERE j2.name = ? AND r2.state = 'succeeded' AND (? IS NULL OR r2.platform = ?)
                     ORDER BY r2.finished_at DESC LIMIT 1)`,
    );
    this.deleteForRun = db.prepare<[string]>('DELETE FROM artifacts WHERE run_id = ?');
    this.blobsStmt = db.prepare<[], { sha256: string; size: number }>(
      'SELECT sha256, MAX(size) AS size FROM artifacts GROUP BY sha256 ORDER BY sha256',
    );
  }

  /** Replace the run's artifact list; call inside a write batch. */
  record(runId: string, files: readonly ArtifactFile[]): void {
    this.deleteForRun.run(runId);
    for (const f of files) this.insertStmt.run(runId, f.path, f.size, f.sha256);
  }

  forRun(runId: string): ArtifactFile[] {
    return this.forRunStmt.all(runId);
  }

  file(runId: string, path: string): ArtifactFile | undefined {
    return this.fileStmt.get(runId, path);
  }

  /** Runs that produced a file with this hash, newest first. */
  withSha(sha256: string): ArtifactOrigin[] {
    return this.bySha.all(sha256);
  }

  /** Every blob some run refers to, with its size; iterated, since a store may hold millions. */
  referencedBlobs(): IterableIterator<{ sha256: string; size: number }> {
    return this.blobsStmt.iterate();
  }

  /** `path` in the job's latest successful run (on `platform`, if given); undefined if that run lacks it. */
  latest(job: string, path: string, platform?: string): ArtifactOrigin | undefined {
    const p = platform ?? null;
    return this.latestStmt.get(path, job, p, p);
  }
}
