import type { Db } from './db.ts';

/** A run's console as the database vouches for it: what a backup copies of it. */
export interface ConsoleExtent {
  id: string;
  state: string;
  logBytes: number;
}

/** Every run's console length, iterated (a database may hold many runs). */
export function consoleExtents(db: Db): IterableIterator<ConsoleExtent> {
  return db.prepare<[], ConsoleExtent>('SELECT id, state, log_bytes AS logBytes FROM runs ORDER BY id').iterate();
}

/** What a backup's manifest records of its database, checked again on restore. */
export interface DatabaseCounts {
  schemaVersion: number;
  jobs: number;
  runs: number;
  artifacts: number;
}

export function databaseCounts(db: Db): DatabaseCounts {
  const one = (sql: string) => (db.prepare<[], { n: number | null }>(sql).get()?.n ?? 0) as number;
  return {
    schemaVersion: one('SELECT MAX(version) AS n FROM schema_migrations'),
    jobs: one('SELECT COUNT(*) AS n FROM jobs'),
    runs: one('SELECT COUNT(*) AS n FROM runs'),
    artifacts: one('SELECT COUNT(*) AS n FROM artifacts'),
  };
}

/** SQLite's own check of a copied database file: 'ok' or what is wrong. */
export function quickCheck(db: Db): string {
  const rows = db.prepare<[], { quick_check: string }>('PRAGMA quick_check').all();
  return rows.map((r) => r.quick_check).join('; ');
}
