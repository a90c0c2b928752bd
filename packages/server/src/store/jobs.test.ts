import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobSpecSchema } from '@builder/protocol';
import { migrate, openDb } from './db.ts';
import { JobStore } from './jobs.ts';
import { MIGRATIONS } from './migrations.ts';
import { scriptFor } from './rows.ts';

describe('JobStore: templated jobs', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'builder-jobs-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps one script per platform and the template, and forgets both when replaced by a plain script', () => {
    const db = openDb(dir);
    const jobs = new JobStore(db);
    const templated = JobSpecSchema.parse({
      name: 'pkg',
      platforms: ['debian-12', 'freebsd-14'],
      scripts: { 'debian-12': 'echo deb', 'freebsd-14': 'echo bsd' },
      template: { name: 'hello', vars: { REPO: 'x' } },
      schedule: null,
    });
    const { job } = jobs.upsert(templated, null, 0);
    expect(job.template).toEqual({ name: 'hello', vars: { REPO: 'x' } });
    expect(scriptFor(job, 'debian-12')).toBe('echo deb');
    expect(scriptFor(job, 'freebsd-14')).toBe('echo bsd');

    const plain = JobSpecSchema.parse({ name: 'pkg', platforms: ['debian-12'], script: 'true', schedule: null });
    const { job: replaced } = jobs.upsert(plain, null, 1);
    expect(replaced).toMatchObject({ script: 'true', scripts: null, template: null });
    expect(scriptFor(replaced, 'debian-12')).toBe('true');
    db.close();
  });

  it('migration 3 leaves jobs of an older database plain-script jobs', () => {
    const file = join(dir, 'builder.sqlite');
    const old = new Database(file);
    old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER)');
    for (const m of MIGRATIONS.filter((m) => m.version <= 2)) {
      old.exec(m.sql);
      old.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(m.version, m.name);
    }
    old
      .prepare(
        `INSERT INTO jobs (name, platforms, script, timeout_s, kill_grace_s, retries, retry_backoff_s, concurrency,
         created_at, updated_at) VALUES ('old', '["debian-12"]', 'make', 60, 1, 0, 1, 1, 0, 0)`,
      )
      .run();
    migrate(old);
    const job = new JobStore(old).get('old')!;
    expect(job).toMatchObject({ script: 'make', scripts: null, template: null });
    expect(scriptFor(job, 'debian-12')).toBe('make');
    old.close();
  });
});
