import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { insertRun } from '../test-support/runs.ts';
import { JobSpecSchema } from '@builder/protocol';
import type { Db } from './db.ts';
import { HookStore } from './hooks.ts';
import { JobStore } from './jobs.ts';
import { RunStore } from './runs.ts';
import { removeTempDb, tempDb } from '../test-support/temp-db.ts';

const A = 'a'.repeat(40);
const B = 'ab'.repeat(20);

describe('push hooks and the runs of a commit, on a real SQLite file', () => {
  let dir: string;
  let db: Db;
  let jobs: JobStore;
  let runs: RunStore;
  let hooks: HookStore;

  const job = (name: string) =>
    jobs.upsert(
      JobSpecSchema.parse({
        name,
        platforms: ['p'],
        script: 'true',
        schedule: null,
        source: { git: '/r', ref: 'main' },
      }),
      null,
      0,
    ).job;
  const queue = (jobId: number, ref: string, queuedAt: number) =>
    insertRun({ runs, jobs }, { id: jobId }, { queuedAt, ref });

  beforeEach(() => {
    ({ dir, db } = tempDb('builder-hooks-'));
    jobs = new JobStore(db);
    runs = new RunStore(db);
    hooks = new HookStore(db);
  });
  afterEach(() => {
    removeTempDb(dir, db);
  });

  it('finds the runs of a commit by full SHA or prefix: asked for by SHA, or resolved to it on start', () => {
    const app = job('app');
    const other = job('other');
    const pushed = queue(app.id, A, 1); // a push hook's run: its ref is the SHA, not started yet
    const branch = runs.start(runs.assign(queue(app.id, 'main', 2), 'w', 2), 3, A); // main resolved to A
    const elsewhere = queue(other.id, A, 4);
    const unrelated = runs.start(runs.assign(queue(app.id, A, 5), 'w', 5), 6, B); // asked for A, built B
    const ids = (sha: string, job?: number) => runs.forCommit(sha, { job, limit: 100 }).map((r) => r.id);
    expect(ids(A)).toEqual([elsewhere.id, branch.id, pushed.id]);
    expect(ids('aaaa')).toEqual([elsewhere.id, branch.id, pushed.id]);
    expect(ids(A, app.id)).toEqual([branch.id, pushed.id]);
    expect(ids('abab')).toEqual([unrelated.id]);
    expect(ids('abc')).toEqual([]);
    const plan = db
      .prepare(`EXPLAIN QUERY PLAN SELECT id FROM runs WHERE commit_sha >= ? AND commit_sha < ?`)
      .all(A, `${A}g`) as { detail: string }[];
    expect(plan.map((p) => p.detail).join('\n')).toContain('runs_by_commit');
  });

  it('keeps one hook per job and the runs each delivery queued', () => {
    const app = job('app');
    expect(hooks.get(app.id)).toBeUndefined();
    expect(hooks.set(app.id, 's'.repeat(20), null, 1)).toBe(true);
    expect(hooks.set(app.id, 't'.repeat(20), ['main', 'release/*'], 2)).toBe(false);
    expect(hooks.get(app.id)).toEqual({
      jobId: app.id,
      secret: 't'.repeat(20),
      branches: ['main', 'release/*'],
      updatedAt: 2,
    });
    expect(hooks.list()).toEqual([{ job: 'app', branches: ['main', 'release/*'], updatedAt: 2 }]);

    hooks.recordDelivery({ jobId: app.id, forge: 'github', delivery: 'd1', commit: A, runs: ['r1', 'r2'] }, 3);
    expect(hooks.delivery(app.id, 'github', 'd1')).toEqual(['r1', 'r2']);
    expect(hooks.delivery(app.id, 'gitlab', 'd1')).toBeUndefined();
    expect(() =>
      hooks.recordDelivery({ jobId: app.id, forge: 'github', delivery: 'd1', commit: A, runs: [] }, 4),
    ).toThrow(/UNIQUE/);
    expect(hooks.remove(app.id)).toBe(true);
    expect(hooks.remove(app.id)).toBe(false);
  });
});
