import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ServerToWorker } from '@builder/protocol';
import { runPath, type FakeWorker, type RunPath, finished } from '../test-support/run-path.ts';
import { Chains, checkAfter } from './chains.ts';

const assigned = (w: FakeWorker) =>
  w.sent.filter((m): m is Extract<ServerToWorker, { type: 'assign' }> => m.type === 'assign').map((m) => m.run);

const FILE = { path: 'dist/a.tar', size: 5, sha256: 'a'.repeat(64) };

describe('after: chains and inputs on the run path (in-memory SQLite, no server)', () => {
  let p: RunPath;
  beforeEach(() => {
    p = runPath();
    new Chains({ ...p, systemLine: (id, text) => p.lifecycle.systemLine(id, text) });
  });
  afterEach(() => p.close());

  it("queues one follower per success, in the success's batch, with the run's artifacts as inputs", async () => {
    const w = p.worker('w1', { capacity: 4 });
    const a = p.job({ name: 'a', platforms: ['p', 'q'] });
    p.job({ name: 'b', after: 'a', retries: 1, retryBackoffSec: 0 });
    const [run] = p.enqueue(a, { platforms: ['p'] });
    await p.settle();
    p.commit.write(() => p.artifacts.record(run!.id, [FILE]));
    p.lifecycle.started(w, run!.id, 1, p.clock.t);
    p.lifecycle.finished(w, finished(run!.id, p.clock.t));
    // the success and the follower, assigned too, are one batch: nothing is durable before the flush
    expect(p.commit.pending).toBe(true);
    await p.settle();
    const [b] = p.runs.list({ job: p.jobs.get('b')!.id, limit: 10 });
    expect(b).toMatchObject({ afterRun: run!.id, platform: 'p', state: 'assigned' });
    const expected = { name: 'dist/a.tar', size: 5, sha256: FILE.sha256 };
    expect(p.inputs.forRun(b!.id)).toEqual([
      { ...expected, from: { job: 'a', number: 1, platform: 'p', path: 'dist/a.tar' } },
    ]);
    expect(assigned(w).find((r) => r.runId === b!.id)?.inputs).toEqual([expected]);

    // the same finished again (a worker resending after a reconnect) queues nothing more
    p.lifecycle.finished(w, finished(run!.id, p.clock.t));
    await p.settle();
    expect(p.runs.list({ job: p.jobs.get('b')!.id, limit: 10 })).toHaveLength(1);

    // a retried attempt gets the same inputs
    p.lifecycle.started(w, b!.id, 1, p.clock.t);
    p.lifecycle.finished(w, finished(b!.id, p.clock.t, 1));
    await p.settle();
    const attempts = assigned(w).filter((r) => r.runId === b!.id);
    expect(attempts.map((r) => [r.attempt, r.inputs])).toEqual([
      [1, [expected]],
      [2, [expected]],
    ]);
  });

  it('queues nothing after a failure, nor on a platform the follower does not build for', async () => {
    const w = p.worker('w1', { capacity: 4 });
    const q = p.worker('wq', { platform: 'q', capacity: 4 });
    const a = p.job({ name: 'a', platforms: ['p', 'q'] });
    p.job({ name: 'b', after: 'a' });
    const [onP] = p.enqueue(a, { platforms: ['p'] });
    const [onQ] = p.enqueue(a, { platforms: ['q'] });
    await p.settle();
    p.lifecycle.finished(w, finished(onP!.id, p.clock.t, 2));
    p.lifecycle.finished(q, finished(onQ!.id, p.clock.t));
    await p.settle();
    expect(p.runs.list({ job: p.jobs.get('b')!.id, limit: 10 })).toHaveLength(0);
  });

  it('refuses an after: that names no job or comes back to the job', () => {
    p.job({ name: 'a' });
    p.job({ name: 'b', after: 'a' });
    p.job({ name: 'c', after: 'b' });
    expect(() => checkAfter(p.jobs, 'a', 'c')).toThrow('after: a → c → b → a would be a cycle');
    expect(() => checkAfter(p.jobs, 'a', 'a')).toThrow('after: a → a would be a cycle');
    expect(() => checkAfter(p.jobs, 'd', 'nope')).toThrow('after: no job named "nope"');
    expect(() => checkAfter(p.jobs, 'd', 'c')).not.toThrow();
  });
});
