import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobSpecSchema, type Environment } from '@builder/protocol';
import type { Db } from './db.ts';
import { JobStore } from './jobs.ts';
import { RunStore } from './runs.ts';
import { removeTempDb, tempDb } from '../test-support/temp-db.ts';

describe('EnvironmentStore on a real SQLite file', () => {
  let dir: string;
  let db: Db;
  let runs: RunStore;
  let jobs: JobStore;

  beforeEach(() => {
    ({ dir, db } = tempDb('builder-env-store-'));
    jobs = new JobStore(db);
    runs = new RunStore(db);
  });
  afterEach(() => {
    removeTempDb(dir, db);
  });

  const started = (env: Environment | undefined) => {
    const { job } = jobs.upsert(
      JobSpecSchema.parse({ name: 'j', platforms: ['p'], script: 'true', schedule: null }),
      null,
      0,
    );
    const run = runs.insert({
      ...{ jobId: job.id, number: jobs.allocateNumber(job.id), platform: 'p', script: 'true', params: {} },
      ...{ trigger: 'manual', maxAttempts: 1, retryBackoffSec: 10, timeoutSec: 60, killGraceSec: 1 },
      ...{ priority: 0, queuedAt: 1 },
    });
    const assigned = runs.assign(run, 'w1', 2);
    runs.start(assigned, 3, undefined, env);
    return run.id;
  };
  const env = (version: string): Environment => ({
    worker: 'w1',
    executor: 'chroot',
    kernel: 'Linux 6.1',
    builderVersion: '0.1.0',
    base: {
      path: '/roots/bookworm',
      suite: 'bookworm',
      // the worker's own claim is not trusted as a key: the server hashes the list itself
      packagesSha256: '0'.repeat(64),
      packages: [
        { name: 'zlib1g', version: '1:1.2.13', arch: 'amd64' },
        { name: 'apt', version, arch: 'amd64' },
      ],
    },
  });

  it('keeps each distinct package list once, and gives every run its own back', () => {
    const ids = [started(env('2.6.1')), started(env('2.6.1')), started(env('2.6.1')), started(env('2.6.2'))];
    expect(db.prepare('SELECT COUNT(*) AS n FROM environment_packages').get()).toEqual({ n: 2 });
    const first = runs.environments.forRun(ids[0]!)!;
    expect(first.base?.packages).toEqual([
      { name: 'apt', version: '2.6.1', arch: 'amd64' },
      { name: 'zlib1g', version: '1:1.2.13', arch: 'amd64' },
    ]);
    expect(first.base?.packagesSha256).not.toBe('0'.repeat(64));
    expect(runs.environments.forRun(ids[1]!)?.base?.packagesSha256).toBe(first.base?.packagesSha256);
    expect(runs.environments.forRun(ids[3]!)?.base?.packages[0]?.version).toBe('2.6.2');
  });

  it('a run whose worker reported nothing (an older worker) has no environment', () => {
    expect(runs.environments.forRun(started(undefined))).toBeNull();
  });
});
