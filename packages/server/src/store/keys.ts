import { randomBytes } from 'node:crypto';
import type { Db } from './db.ts';

/**
 * A key the server made for itself, created on first use and kept in the database (readable by
 * the server's user only), so whatever is derived from it still holds after a restart.
 */
export function serverKey(db: Db, name: string, now: number): Buffer {
  const found = db.prepare('SELECT value FROM server_keys WHERE name = ?').get(name) as { value: Buffer } | undefined;
  if (found) return found.value;
  const value = randomBytes(32);
  db.prepare('INSERT INTO server_keys (name, value, created_at) VALUES (?, ?, ?)').run(name, value, now);
  return value;
}

/** A stored key the server made earlier (a key pair it made asynchronously), or undefined. */
export function storedKey(db: Db, name: string): Buffer | undefined {
  const found = db.prepare('SELECT value FROM server_keys WHERE name = ?').get(name) as { value: Buffer } | undefined;
  return found?.value;
}

/** Keep `value` as the key `name` unless one is there already; returns the one kept. */
export function keepKey(db: Db, name: string, value: Buffer, now: number): Buffer {
  db.prepare('INSERT OR IGNORE INTO server_keys (name, value, created_at) VALUES (?, ?, ?)').run(name, value, now);
  return storedKey(db, name) ?? value;
}
