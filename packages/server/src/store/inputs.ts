import type { InputFile, InputOrigin, RunInputView } from '@builder/protocol';
import type { Db } from './db.ts';

/** An input as it is recorded on a run. */
export interface RunInput extends InputFile {
  from: InputOrigin;
}

/**
 * A run's inputs (`$BUILDER_INPUT`), by run, and the blobs users sent for them. Bytes live in the
 * BlobStore under each SHA-256, shared with artifacts: an input that was an artifact is not copied.
 */
export class InputStore {
  private readonly insertStmt;
  private readonly forRunStmt;
  private readonly fileStmt;
  private readonly uploadStmt;
  private readonly uploadedStmt;

  constructor(db: Db) {
    this.insertStmt = db.prepare<[string, string, number, string, string | null]>(
      'INSERT INTO run_inputs (run_id, name, size, sha256, origin) VALUES (?, ?, ?, ?, ?)',
    );
    this.forRunStmt = db.prepare<[string], { name: string; size: number; sha256: string; origin: string | null }>(
      'SELECT name, size, sha256, origin FROM run_inputs WHERE run_id = ? ORDER BY name',
    );
    this.fileStmt = db.prepare<[string, string], InputFile>(
      'SELECT name, size, sha256 FROM run_inputs WHERE run_id = ? AND name = ?',
    );
    this.uploadStmt = db.prepare<[string, number, number]>(
      `INSERT INTO input_uploads (sha256, size, uploaded_at) VALUES (?, ?, ?)
       ON CONFLICT (sha256) DO UPDATE SET size = excluded.size, uploaded_at = excluded.uploaded_at`,
    );
    // a hash some run already refers to is in the store as well (retention keeps referenced blobs)
    this.uploadedStmt = db.prepare<[string, number, string, number, string, number], { n: number }>(
      `SELECT EXISTS (SELECT 1 FROM input_uploads WHERE sha256 = ? AND size = ?)
           OR EXISTS (SELECT 1 FROM artifacts WHERE sha256 = ? AND size = ?)
           OR EXISTS (SELECT 1 FROM run_inputs WHERE sha256 = ? AND size = ?) AS n`,
    );
  }

  /** Record the run's inputs; call inside a write batch, with the run's insert. */
  record(runId: string, inputs: readonly RunInput[]): void {
    for (const i of inputs) {
      this.insertStmt.run(runId, i.name, i.size, i.sha256, i.from === null ? null : JSON.stringify(i.from));
    }
  }

  forRun(runId: string): RunInputView[] {
    return this.forRunStmt.all(runId).map((r) => ({
      name: r.name,
      size: r.size,
      sha256: r.sha256,
      from: r.origin === null ? null : (JSON.parse(r.origin) as InputOrigin),
    }));
  }

  file(runId: string, name: string): InputFile | undefined {
    return this.fileStmt.get(runId, name);
  }

  /** Blobs a user sent with PUT /inputs (already in the blob store); inside a write batch. */
  recordUploads(files: readonly { sha256: string; size: number }[], now: number): void {
    for (const f of files) this.uploadStmt.run(f.sha256, f.size, now);
  }

  /** Whether the server received this content (an upload, an artifact, another run's input). */
  has(sha256: string, size: number): boolean {
    return this.uploadedStmt.get(sha256, size, sha256, size, sha256, size)?.n === 1;
  }
}
