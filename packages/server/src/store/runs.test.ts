import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobSpecSchema } from '@builder/protocol';
import { openDb, type Db } from './db.ts';
import { GroupCommit } from './group-commit.ts';
import { JobStore } from './jobs.ts';
import { IllegalTransitionError, RunStore } from './runs.ts';
import { prepareFor } from './rows.ts';
import { removeTempDb, tempDb } from '../test-support/temp-db.ts';

describe('RunStore and GroupCommit on a real SQLite file', () => {
  let dir: string;
  let db: Db;
  let jobs: JobStore;
  let runs: RunStore;
  let commit: GroupCommit;

  const queue = (name: string, retries = 0) => {
    const { job } = jobs.upsert(
      JobSpecSchema.parse({ name, platforms: ['p'], script: 'true', schedule: null, retries, retryBackoffSec: 10 }),
      null,
      0,
    );
    return runs.insert({
      jobId: job.id,
      number: jobs.allocateNumber(job.id),
      platform: 'p',
      script: 'true',
      params: {},
      trigger: 'manual',
      maxAttempts: retries + 1,
      retryBackoffSec: 10,
      timeoutSec: 60,
      killGraceSec: 1,
      priority: 0,
      queuedAt: 1,
    });
  };

  beforeEach(() => {
    ({ dir, db } = tempDb('builder-store-'));
    jobs = new JobStore(db);
    runs = new RunStore(db);
    commit = new GroupCommit(db);
  });
  afterEach(() => {
    removeTempDb(dir, db);
  });

  it("keeps a job's source, a run's ref and the commit its start reported", () => {
    const spec = { name: 'src', platforms: ['p'], script: 'true', schedule: null };
    const source = { git: 'git://h/r', ref: 'main' };
    const { job } = jobs.upsert(JobSpecSchema.parse({ ...spec, source }), null, 0);
    expect(job.source).toEqual(source);
    const run = runs.insert({
      ...{ jobId: job.id, number: jobs.allocateNumber(job.id), platform: 'p', script: 'true', params: {} },
      ...{ trigger: 'manual', maxAttempts: 1, retryBackoffSec: 10, timeoutSec: 60, killGraceSec: 1 },
      ...{ priority: 0, queuedAt: 1, ref: 'v1' },
    });
    expect(run).toMatchObject({ ref: 'v1', commit: null });
    runs.assign(run, 'w1', 100);
    const sha = 'a'.repeat(40);
    expect(runs.start(runs.get(run.id)!, 150, sha).commit).toBe(sha);
    expect(runs.get(run.id)).toMatchObject({ state: 'running', ref: 'v1', commit: sha });
    expect(jobs.upsert(JobSpecSchema.parse(spec), null, 1).job.source).toBeNull();
  });

  it("keeps a job's prepare steps and each run's own (its platform's, or none)", () => {
    const spec = { name: 'prep', platforms: ['p', 'q'], scripts: { p: 'make', q: 'make' }, schedule: null };
    const { job } = jobs.upsert(JobSpecSchema.parse({ ...spec, prepares: { p: 'apt-get install -y x' } }), null, 0);
    expect(job).toMatchObject({ prepare: null, prepares: { p: 'apt-get install -y x' } });
    expect(prepareFor(job, 'p')).toBe('apt-get install -y x');
    expect(prepareFor(job, 'q')).toBeNull();
    const run = runs.insert({
      ...{ jobId: job.id, number: jobs.allocateNumber(job.id), platform: 'p', script: 'make', params: {} },
      ...{ trigger: 'manual', maxAttempts: 1, retryBackoffSec: 10, timeoutSec: 60, killGraceSec: 1 },
      ...{ priority: 0, queuedAt: 1, prepare: prepareFor(job, 'p') },
    });
    // the run keeps what it was queued with, whatever the job says later
    const plain = jobs.upsert(
      JobSpecSchema.parse({ ...spec, scripts: undefined, script: 'make', prepare: 'apt' }),
      null,
      1,
    );
    expect(plain.job).toMatchObject({ prepare: 'apt', prepares: null });
    expect(prepareFor(plain.job, 'q')).toBe('apt');
    expect(runs.get(run.id)).toMatchObject({ prepare: 'apt-get install -y x' });
    expect(jobs.upsert(JobSpecSchema.parse({ ...spec }), null, 2).job).toMatchObject({ prepare: null, prepares: null });
  });

  it('retries failed attempts with exponential backoff, then records the final result', () => {
    const run = queue('flaky', 2);
    runs.assign(run, 'w1', 100);
    expect(runs.finish(runs.get(run.id)!, { kind: 'exited', code: 1 }, 200, 1000).state).toBe('queued');
    let r = runs.get(run.id)!;
    expect(r).toMatchObject({ state: 'queued', attempt: 2, notBefore: 1000 + 10_000, worker: null });
    runs.assign(r, 'w2', 2000);
    expect(runs.finish(runs.get(run.id)!, { kind: 'lost' }, 2100, 3000).state).toBe('queued');
    expect(runs.get(run.id)!.notBefore).toBe(3000 + 20_000);
    runs.assign(runs.get(run.id)!, 'w1', 30_000);
    expect(runs.finish(runs.get(run.id)!, { kind: 'timeout' }, 31_000, 31_000).state).toBe('timeout');
    r = runs.get(run.id)!;
    expect(r).toMatchObject({ state: 'timeout', attempt: 3, result: { kind: 'timeout' } });
    expect(runs.attempts(run.id).map((a) => [a.attempt, a.worker, a.result.kind])).toEqual([
      [1, 'w1', 'exited'],
      [2, 'w2', 'lost'],
      [3, 'w1', 'timeout'],
    ]);
  });

  it('does not retry cancelled or errored runs', () => {
    const run = queue('c', 3);
    runs.assign(run, 'w1', 1);
    expect(runs.finish(runs.get(run.id)!, { kind: 'error', message: 'no disk' }, 2, 2).state).toBe('error');
  });

  it('refuses transitions the state machine does not allow', () => {
    const run = queue('x');
    expect(() => runs.start(run, 1)).toThrow(IllegalTransitionError);
    runs.assign(run, 'w', 1);
    runs.finish(runs.get(run.id)!, { kind: 'exited', code: 0 }, 2, 2);
    expect(() => runs.finish(runs.get(run.id)!, { kind: 'exited', code: 0 }, 3, 3)).toThrow(IllegalTransitionError);
  });

  it('group commit: nothing is visible to another connection, and no callback runs, before the batch commits', async () => {
    const run = commit.write(() => queue('batched'));
    const sent: string[] = [];
    commit.then(() => sent.push('ack'));
    const other = openDb(dir);
    expect(other.prepare('SELECT COUNT(*) AS n FROM runs').get()).toEqual({ n: 0 });
    expect(sent).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(sent).toEqual(['ack']);
    expect(other.prepare('SELECT id FROM runs').get()).toEqual({ id: run.id });
    other.close();
  });

  it('group commit: a change that throws is rolled back alone, the rest of the batch commits', async () => {
    const a = commit.write(() => queue('a'));
    expect(() =>
      commit.write(() => {
        queue('b');
        throw new Error('boom');
      }),
    ).toThrow('boom');
    commit.flush();
    expect(runs.get(a.id)).toBeDefined();
    expect(jobs.get('b')).toBeUndefined();
  });
});
