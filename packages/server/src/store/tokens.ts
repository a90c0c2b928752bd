import { createHash, randomBytes } from 'node:crypto';
import type { Role } from '@builder/protocol';
import { type Db, perDatabase } from './db.ts';

const hash = (token: string) => createHash('sha256').update(token).digest('hex');

/** `w1`, or a fleet pattern with `*` wildcards such as `jail-*`: the worker names a token may connect as. */
export const WORKER_PATTERN = /^[A-Za-z0-9*][A-Za-z0-9._*-]{0,63}$/;

export interface TokenGrant {
  role: Role;
  /** For a worker token: the worker name or pattern it is for; null on tokens made before names existed. */
  worker: string | null;
}

export interface TokenRow extends TokenGrant {
  id: number;
  name: string | null;
  createdAt: number;
}

/**
 * Create a token; only its hash is stored, so this is the one time it can be shown. A worker
 * token names the worker it is for (`worker`, a name or a pattern); other roles take no worker.
 */
export function createToken(
  db: Db,
  role: Role,
  name: string | null,
  now: number,
  worker: string | null = null,
): string {
  if (role === 'worker' && (worker === null || !WORKER_PATTERN.test(worker))) {
    throw new Error('a worker token must name its worker: a name such as w1 or a pattern such as jail-*');
  }
  if (role !== 'worker' && worker !== null) throw new Error('only a worker token names a worker');
  const token = `bld_${role}_${randomBytes(24).toString('base64url')}`;
  db.prepare('INSERT INTO tokens (hash, role, name, worker, created_at) VALUES (?, ?, ?, ?, ?)').run(
    hash(token),
    role,
    name,
    worker,
    now,
  );
  return token;
}

/** Asked with every connection and HTTP request that carries a token: prepared once per database. */
const grantQuery = perDatabase((db) =>
  db.prepare<[string], TokenGrant>('SELECT role, worker FROM tokens WHERE hash = ?'),
);

export function grantOfToken(db: Db, token: string): TokenGrant | undefined {
  return grantQuery(db).get(hash(token));
}

export function roleOfToken(db: Db, token: string): Role | undefined {
  return grantOfToken(db, token)?.role;
}

/**
 * May this grant act as worker `name`? Admin tokens may be any worker; a worker token only the
 * one it names (or any its pattern matches). Unnamed worker tokens from before this existed may
 * be none: letting them stay "any worker" is exactly the hole this closes.
 */
export function mayActAsWorker(grant: TokenGrant, name: string): boolean {
  if (grant.role === 'admin') return true;
  if (grant.role !== 'worker' || grant.worker === null) return false;
  return patternMatches(grant.worker, name);
}

export function patternMatches(pattern: string, name: string): boolean {
  if (!pattern.includes('*')) return pattern === name;
  const re = pattern.replace(/[.+?^${}()|[\]\\-]/g, '\\$&').replaceAll('*', '.*');
  return new RegExp(`^${re}$`).test(name);
}

/** Why `grant` cannot connect worker `name`, in words an operator can act on. */
export function workerRefusal(grant: TokenGrant, name: string): string {
  if (grant.role === 'worker' && grant.worker === null) {
    return (
      `this worker token names no worker (it was made before tokens named their worker) and can no longer ` +
      `connect one: make a new one with builder-server token create --role worker --name ${name}`
    );
  }
  if (grant.role === 'worker') {
    return `this token is for worker ${grant.worker}, not ${name}: use the token made for ${name}`;
  }
  return `a ${grant.role} token cannot connect a worker: use a worker token`;
}

export function listTokens(db: Db): TokenRow[] {
  return (
    db.prepare('SELECT id, role, name, worker, created_at FROM tokens ORDER BY id').all() as {
      id: number;
      role: Role;
      name: string | null;
      worker: string | null;
      created_at: number;
    }[]
  ).map((r) => ({ id: r.id, role: r.role, name: r.name, worker: r.worker, createdAt: r.created_at }));
}

export function revokeToken(db: Db, id: number): boolean {
  return db.prepare('DELETE FROM tokens WHERE id = ?').run(id).changes > 0;
}
