import { createHash, randomBytes } from 'node:crypto';
import type { Role } from '@builder/protocol';
import type { Db } from './db.ts';

const hash = (token: string) => createHash('sha256').update(token).digest('hex');

/** Create a token; only its hash is stored, so this is the one time it can be shown. */
export function createToken(db: Db, role: Role, name: string | null, now: number): string {
  const token = `bld_${role}_${randomBytes(24).toString('base64url')}`;
  db.prepare('INSERT INTO tokens (hash, role, name, created_at) VALUES (?, ?, ?, ?)').run(hash(token), role, name, now);
  return token;
}

export function roleOfToken(db: Db, token: string): Role | undefined {
  const row = db.prepare('SELECT role FROM tokens WHERE hash = ?').get(hash(token)) as { role: Role } | undefined;
  return row?.role;
}

export function listTokens(db: Db): { id: number; role: Role; name: string | null; createdAt: number }[] {
  return (
    db.prepare('SELECT id, role, name, created_at FROM tokens ORDER BY id').all() as {
      id: number;
      role: Role;
      name: string | null;
      created_at: number;
    }[]
  ).map((r) => ({ id: r.id, role: r.role, name: r.name, createdAt: r.created_at }));
}

export function revokeToken(db: Db, id: number): boolean {
  return db.prepare('DELETE FROM tokens WHERE id = ?').run(id).changes > 0;
}
