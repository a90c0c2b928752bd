import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** What `builder-server backup` writes as DIR/manifest.json, last, and `restore` checks first. */
export interface Manifest {
  kind: 'builder-backup';
  format: 1;
  /** When the database was copied (ISO 8601): the backup shows the server as it was then. */
  createdAt: string;
  builderVersion: string;
  database: {
    file: 'builder.sqlite';
    bytes: number;
    sha256: string;
    schemaVersion: number;
    jobs: number;
    runs: number;
    artifacts: number;
  };
  consoles: { files: number; bytes: number };
  blobs:
    | {
        store: 'local';
        files: number;
        bytes: number;
        /** Referenced by the database but absent from (or damaged in) the store when backed up. */
        missing: string[];
        damaged: string[];
      }
    | { store: 's3'; location: string };
}

export const MANIFEST = 'manifest.json';

export class BadBackupError extends Error {}

/** The manifest of the backup in `dir`, checked for shape; throws BadBackupError naming the problem. */
export function readManifest(dir: string): Manifest {
  let text;
  try {
    text = readFileSync(join(dir, MANIFEST), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BadBackupError(
      code === 'ENOENT'
        ? `${dir} is not a builder backup: it has no ${MANIFEST} (an interrupted backup never gets one)`
        : `${join(dir, MANIFEST)}: ${(err as Error).message}`,
    );
  }
  let m: Partial<Manifest>;
  try {
    m = JSON.parse(text) as Partial<Manifest>;
  } catch {
    throw new BadBackupError(`${join(dir, MANIFEST)} is not valid JSON`);
  }
  if (m.kind !== 'builder-backup') throw new BadBackupError(`${join(dir, MANIFEST)} is not a builder backup manifest`);
  if (m.format !== 1) {
    throw new BadBackupError(
      `${join(dir, MANIFEST)} has format ${String(m.format)}: this builder-server reads format 1`,
    );
  }
  const d = m.database;
  if (
    typeof m.createdAt !== 'string' ||
    !d ||
    typeof d.sha256 !== 'string' ||
    typeof d.bytes !== 'number' ||
    typeof d.runs !== 'number' ||
    !m.consoles ||
    typeof m.consoles.files !== 'number' ||
    !m.blobs ||
    (m.blobs.store !== 'local' && m.blobs.store !== 's3')
  ) {
    throw new BadBackupError(`${join(dir, MANIFEST)} lacks fields a backup manifest has`);
  }
  return m as Manifest;
}
