import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { JobSpecSchema } from '@builder/protocol';
import type { Db } from './db.ts';
import { GroupCommit } from './group-commit.ts';
import { JobStore } from './jobs.ts';
import { RunStore } from './runs.ts';
import { RepoStore } from './repos.ts';
import { saveRunReport } from './run-reports.ts';
import { createToken, grantOfToken } from './tokens.ts';
import { insertRun } from '../test-support/runs.ts';
import { removeTempDb, tempDb } from '../test-support/temp-db.ts';

/**
 * What the server does with every run that ends prepares no SQL: a statement prepared per call
 * holds its compiled program in native memory until V8 collects the JS object, and two of them
 * per run were most of the server's native heap with a thousand workers (bench thousandWorkers).
 */
describe('statements on the path of every run', () => {
  let dir: string;
  let db: Db;
  beforeEach(() => {
    ({ dir, db } = tempDb('builder-stmts-'));
  });
  afterEach(() => {
    removeTempDb(dir, db);
  });

  it('are prepared once, not per call', () => {
    const commit = new GroupCommit(db);
    const jobs = new JobStore(db);
    const repos = new RepoStore(db);
    const { job } = jobs.upsert(
      JobSpecSchema.parse({ name: 'j', platforms: ['p'], script: 'true', schedule: null }),
      null,
      0,
    );
    const run = insertRun({ runs: new RunStore(db), jobs }, job, { queuedAt: 0 });
    const once = () => {
      commit.write(() => saveRunReport(db, run.id, { summary: null, usage: null }));
      commit.write(() =>
        saveRunReport(db, run.id, { summary: null, usage: { cpuMs: 1, peakMemoryBytes: 2, source: 'x' } }),
      );
      jobs.followers('j');
      jobs.alertWebhooks(job.id);
      repos.forRun(job.id, 'p');
      commit.flush();
    };
    once(); // the first call may prepare what it keeps
    const prepare = vi.spyOn(db, 'prepare');
    for (let i = 0; i < 3; i++) once();
    expect(prepare.mock.calls.map((c) => c[0])).toEqual([]);
    // and what they wrote is there
    expect(db.prepare('SELECT cpu_ms FROM run_reports WHERE run_id = ?').get(run.id)).toEqual({ cpu_ms: 1 });
  });

  it('and so is the token lookup of every connection', () => {
    const token = createToken(db, 'worker', null, 0, 'w1');
    expect(grantOfToken(db, token)).toEqual({ role: 'worker', worker: 'w1' });
    const prepare = vi.spyOn(db, 'prepare');
    for (let i = 0; i < 3; i++) expect(grantOfToken(db, token)?.role).toBe('worker');
    expect(grantOfToken(db, 'bld_nonsense')).toBeUndefined();
    expect(prepare).not.toHaveBeenCalled();
  });
});
