import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { insertRun } from '../test-support/runs.ts';
import { JobSpecSchema, type RunResult } from '@builder/protocol';
import type { Db } from './db.ts';
import { JobStore } from './jobs.ts';
import { rebuildCounts, rebuildsOf } from './rebuilds.ts';
import { RunHistory } from './run-history.ts';
import { RunStore } from './runs.ts';
import { lastRuns, latestSucceededPerPlatform, neighbours } from './site-history.ts';
import { badgeRun, JOB_PLATFORMS, latestPerPlatform, runsPage } from './site-queries.ts';
import { removeTempDb, tempDb } from '../test-support/temp-db.ts';

/**
 * The statements whose cost grows with history (the jobs, job and run pages, the runs answer, the
 * check for a recovery at every run's end) must find their rows through an index: neither a scan
 * of the runs table nor a sort of all of a job's runs. Asked of SQLite itself (EXPLAIN QUERY PLAN)
 * with the statements and arguments the code really ran.
 */
describe('queries over a long history use indexes', () => {
  let dir: string;
  let db: Db;
  let jobs: JobStore;
  let runs: RunStore;
  /** Every statement run through `traced`, with its arguments. */
  let ran: { sql: string; args: unknown[] }[];
  let traced: Db;

  const add = (jobId: number, platform: string, t: number, result: RunResult, rebuildOf: number | null = null) => {
    const queued = insertRun({ runs, jobs }, { id: jobId }, { platform, queuedAt: t, rebuildOf });
    return runs.finish(runs.start(runs.assign(queued, 'w', t + 1), t + 2), result, t + 10, t + 10);
  };
  const ok: RunResult = { kind: 'exited', code: 0 };
  const failed: RunResult = { kind: 'exited', code: 1 };

  beforeEach(() => {
    ({ dir, db } = tempDb('builder-plans-'));
    jobs = new JobStore(db);
    runs = new RunStore(db);
    ran = [];
    traced = new Proxy(db, {
      get(target, key) {
        if (key !== 'prepare') return Reflect.get(target, key, target) as unknown;
        return (sql: string) => {
          const stmt = target.prepare(sql);
          return new Proxy(stmt, {
            get(s, k) {
              const v = Reflect.get(s, k, s) as unknown;
              if (typeof v !== 'function') return v;
              // columns(), raw(): native methods that want the statement itself as `this`
              if (!['get', 'all', 'run', 'iterate'].includes(String(k))) return (v as () => unknown).bind(s);
              return (...args: unknown[]) => {
                ran.push({ sql, args });
                return (v as (...a: unknown[]) => unknown).apply(s, args);
              };
            },
          });
        };
      },
    });
  });
  afterEach(() => {
    removeTempDb(dir, db);
  });

  const plan = (q: { sql: string; args: unknown[] }) =>
    (db.prepare(`EXPLAIN QUERY PLAN ${q.sql}`).all(...q.args) as { detail: string }[]).map((r) => r.detail);

  it('answers right, and no statement scans the runs table or sorts a job’s runs', () => {
    const a = jobs.upsert(
      JobSpecSchema.parse({ name: 'a', platforms: ['x', 'y'], script: 'true', schedule: null }),
      null,
      0,
    ).job;
    const b = jobs.upsert(
      JobSpecSchema.parse({ name: 'b', platforms: ['x'], script: 'true', schedule: null }),
      null,
      0,
    ).job;
    // a: x #1 ok, y #2 ok, x #3 failed, z #4 failed (a platform it no longer names), y #5 rebuilds #2
    add(a.id, 'x', 100, ok);
    add(a.id, 'y', 200, ok);
    const third = add(a.id, 'x', 300, failed);
    add(a.id, 'z', 400, failed);
    add(a.id, 'y', 500, ok, 2);
    add(b.id, 'x', 150, ok);

    // through the traced connection: every statement these helpers run is recorded
    const tr = new RunStore(traced);
    expect(latestPerPlatform(traced, a.id).map((r) => [r.platform, r.number])).toEqual([
      ['x', 3],
      ['y', 5],
      ['z', 4],
    ]);
    expect(latestSucceededPerPlatform(traced, a.id).map((r) => [r.platform, r.number])).toEqual([
      ['x', 1],
      ['y', 5],
    ]);
    expect(latestPerPlatform(traced, 999)).toEqual([]);
    expect(tr.list({ limit: 3 }).map((r) => `${r.job}#${r.number}`)).toEqual(['a#5', 'a#4', 'a#3']);
    expect(tr.list({ job: a.id, limit: 2 }).map((r) => r.number)).toEqual([5, 4]);
    expect(tr.latest({ job: b.id })?.number).toBe(1);
    expect(tr.latest({ job: a.id, platform: 'x' })?.number).toBe(3);
    expect(neighbours(traced, a.id, 'x', 3)).toEqual({ previous: 1, next: null });
    expect(rebuildsOf(traced, a.id, 2).map((r) => r.number)).toEqual([5]);
    expect(rebuildCounts(traced, a.id)).toEqual({ rebuilds: 1, reproducible: 0 });
    expect(lastRuns(traced, a.id, 2).map((r) => r.number)).toEqual([4, 5]);
    expect(runsPage(traced, { jobId: a.id, platform: 'x' }, 10, 0).total).toBe(2);
    expect(badgeRun(traced, a.id, 'y')?.number).toBe(5);
    expect(new RunHistory(traced).previousOutcome(third, 310)).toBe('succeeded');

    expect(ran.length).toBeGreaterThanOrEqual(14);
    for (const q of ran) {
      const steps = plan(q);
      // a statement over the job's platforms (JOB_PLATFORMS) reads its few rows and sorts its
      // answer, one row per platform: no more than that
      const perPlatform = q.sql.startsWith(JOB_PLATFORMS);
      const bad = steps.filter(
        (d) =>
          (/^SCAN \w+$/.test(d) && !(perPlatform && d === 'SCAN platforms')) || (/TEMP B-TREE/.test(d) && !perPlatform),
      );
      expect(bad, `${q.sql}\n${steps.join('\n')}`).toEqual([]);
    }
    // the new indexes are the ones doing it
    const used = ran.flatMap(plan).join('\n');
    for (const index of [
      'runs_by_queued',
      'runs_by_job_queued',
      'runs_by_job_platform',
      'runs_by_job_platform_finished',
      'runs_rebuilds',
    ])
      expect(used).toContain(index);
  });
});
