import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../store/db.ts';

/** A server database in a new temp dir, as store tests start from; `removeTempDb` ends it. */
export function tempDb(prefix: string): { dir: string; db: Db } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, db: openDb(dir) };
}

/** Close the database (unless the test did) and delete its dir. */
export function removeTempDb(dir: string, db: Db): void {
  if (db.open) db.close();
  rmSync(dir, { recursive: true, force: true });
}
