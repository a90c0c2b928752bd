import type { Db } from './db.ts';

export interface SecretEntry {
  name: string;
  /** The job it belongs to; null for a secret every job may ask for. */
  job: string | null;
  updatedAt: number;
}

/**
 * Secret values by name, for all jobs (job '') or one job's own, which wins over the shared one.
 * Values leave this class only towards the worker running an attempt of a job that asked.
 */
export class SecretStore {
  private readonly lookup;

  constructor(private readonly db: Db) {
    // a job's own secret first, then the shared one
    this.lookup = db.prepare<[string, string], { value: string }>(
      `SELECT value FROM secrets WHERE name = ? AND job IN (?, '') ORDER BY job = '' LIMIT 1`,
    );
  }

  set(name: string, job: string | null, value: string, now: number): void {
    this.db
      .prepare(
        `INSERT INTO secrets (name, job, value, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (name, job) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      )
      .run(name, job ?? '', value, now);
  }

  remove(name: string, job: string | null): boolean {
    return this.db.prepare('DELETE FROM secrets WHERE name = ? AND job = ?').run(name, job ?? '').changes > 0;
  }

  /** Names only: values are never listed. */
  list(): SecretEntry[] {
    return (
      this.db.prepare('SELECT name, job, updated_at FROM secrets ORDER BY job, name').all() as {
        name: string;
        job: string;
        updated_at: number;
      }[]
    ).map((r) => ({ name: r.name, job: r.job === '' ? null : r.job, updatedAt: r.updated_at }));
  }

  /** The values of `names` for `job`, and the names that have none. */
  resolve(job: string, names: readonly string[]): { values: Record<string, string>; missing: string[] } {
    const values: Record<string, string> = {};
    const missing: string[] = [];
    for (const name of names) {
      const row = this.lookup.get(name, job);
      if (row) values[name] = row.value;
      else missing.push(name);
    }
    return { values, missing };
  }

  /** Every value `job` may see, longest first: what its console is masked with. */
  valuesFor(job: string, names: readonly string[]): string[] {
    return Object.values(this.resolve(job, names).values)
      .filter((v) => v.length > 0)
      .sort((a, b) => b.length - a.length);
  }
}
