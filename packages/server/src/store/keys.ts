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
