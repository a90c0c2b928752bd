import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { MIGRATIONS } from './migrations.ts';

export type Db = Database.Database;

/**
 * `make`'s result for each database, made on first use and kept as long as the database: for
 * statements of a store function that runs often (a statement prepared per call keeps its
 * compiled program in native memory until V8 collects it).
 */
export function perDatabase<T>(make: (db: Db) => T): (db: Db) => T {
  const made = new WeakMap<Db, T>();
  return (db) => {
    let value = made.get(db);
    if (value === undefined) made.set(db, (value = make(db)));
    return value;
  };
}

/** The reading half of a statement: rows as objects keyed by column name. */
export interface RowReader<P extends unknown[], R> {
  get(...params: P): R | undefined;
  all(...params: P): R[];
}

/**
 * `stmt`'s rows as objects, made in JavaScript from the raw arrays better-sqlite3 returns in raw
 * mode. Its own row objects are made in C++, each column's name interned and each property added
 * through V8's generic path: for the 32 columns of a run that was a tenth of the server's CPU per
 * trivial job (perf). For the statements read with every run; the rows are the same objects.
 */
export function readRows<P extends unknown[], R>(stmt: Database.Statement<P, R>): RowReader<P, R> {
  const names = stmt.columns().map((c) => c.name);
  stmt.raw(true);
  const row = (values: unknown[]): R => {
    const r: Record<string, unknown> = {};
    for (let i = 0; i < names.length; i++) r[names[i]!] = values[i];
    return r as R;
  };
  return {
    get: (...params) => {
      const values = stmt.get(...params) as unknown[] | undefined;
      return values === undefined ? undefined : row(values);
    },
    all: (...params) => (stmt.all(...params) as unknown[][]).map(row),
  };
}

/** Open (creating if needed) the server's SQLite file in WAL mode and bring its schema up to date. */
export function openDb(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = new Database(join(dataDir, 'builder.sqlite'));
  db.pragma('journal_mode = WAL');
  // FULL: a commit acknowledged to a worker or client survives power loss, not just a crash
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // pages stay in memory until COMMIT (batches are small): a full disk then fails the commit, which
  // GroupCommit rolls back as a whole, rather than some statement halfway through a batch
  db.pragma('cache_spill = OFF');
  // each GroupCommit.write is a savepoint, whose undo journal SQLite writes to a temp file once it
  // passes 16 pages (an enqueue touches a page of every index on runs): keep it in memory, it is
  // never needed after a crash (the WAL is what makes a commit atomic)
  db.pragma('temp_store = MEMORY');
  migrate(db);
  return db;
}

export function migrate(db: Db): void {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
  );
  const applied = new Set(
    (db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version),
  );
  const known = new Set(MIGRATIONS.map((m) => m.version));
  for (const v of applied) {
    if (!known.has(v)) {
      throw new Error(
        `database has schema version ${v}, which this builder-server does not know: upgrade builder-server`,
      );
    }
  }
  for (const m of MIGRATIONS) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        Date.now(),
      );
    })();
  }
}
