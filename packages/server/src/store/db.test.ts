import { readdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { insertRun } from '../test-support/runs.ts';
import { JobSpecSchema } from '@builder/protocol';
import type { Db } from './db.ts';
import { GroupCommit } from './group-commit.ts';
import { JobStore } from './jobs.ts';
import { RunStore } from './runs.ts';
import { removeTempDb, tempDb } from '../test-support/temp-db.ts';

describe('the server database', () => {
  let dir: string;
  let db: Db;
  beforeEach(() => {
    ({ dir, db } = tempDb('builder-db-'));
  });
  afterEach(() => {
    removeTempDb(dir, db);
  });

  it('commits durably (WAL, synchronous=FULL) and keeps savepoint journals in memory', () => {
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    expect(db.pragma('temp_store', { simple: true })).toBe(2); // MEMORY

    // a batch of enqueues, each its own savepoint touching every index on runs, commits whole
    const jobs = new JobStore(db);
    const runs = new RunStore(db);
    const commit = new GroupCommit(db);
    const { job } = jobs.upsert(
      JobSpecSchema.parse({ name: 'j', platforms: ['p'], script: 'true', schedule: null }),
      null,
      0,
    );
    for (let i = 0; i < 200; i++) {
      commit.write(() => insertRun({ runs, jobs }, job, { queuedAt: i }));
    }
    expect(() => commit.write(() => db.prepare('INSERT INTO runs (id) VALUES (NULL)').run())).toThrow();
    expect(commit.flush()).toBe(true);
    expect(runs.list({ job: job.id, limit: 1000 }).map((r) => r.number)).toEqual(
      Array.from({ length: 200 }, (_, i) => 200 - i),
    );
    // nothing but the database, its WAL and shared memory in the data dir
    expect(readdirSync(dir).sort()).toEqual(['builder.sqlite', 'builder.sqlite-shm', 'builder.sqlite-wal']);
  });
});
