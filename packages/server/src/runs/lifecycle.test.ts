import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ServerToWorker } from '@builder/protocol';
import { runPath, trace, type FakeWorker, type RunPath, finished } from '../test-support/run-path.ts';
import { writeToFullDisk } from '../test-support/full-disk.ts';

const ofType = <T extends ServerToWorker['type']>(w: FakeWorker, type: T) =>
  w.sent.filter((m): m is Extract<ServerToWorker, { type: T }> => m.type === type);

describe('Lifecycle on the run path (in-memory SQLite, no server)', () => {
  let p: RunPath;
  beforeEach(() => {
    p = runPath();
  });
  afterEach(() => p.close());

  it('takes a run through queued, assigned, running and succeeded, each told once committed', async () => {
    const w = p.worker('w1');
    const [run] = p.enqueue(p.job({ name: 'build' }));
    expect(p.told.map((e) => e.type)).toEqual(['worker-ready']); // the enqueue is not committed yet
    await p.settle();
    expect(ofType(w, 'assign').map((m) => m.run.runId)).toEqual([run!.id]);

    expect(p.lifecycle.started(w, run!.id, 1, p.clock.t)).toBeUndefined();
    expect(p.run(run!.id).state).toBe('running'); // written at once, in the open batch …
    expect(trace(p.told).at(-1)).toBe('assigned:assigned'); // … told only after it commits
    await p.settle();
    const reply = p.lifecycle.finished(w, finished(run!.id, p.clock.t + 5));
    expect(reply).toEqual({ type: 'finished-ack', runId: run!.id, attempt: 1 });
    await p.settle();
    expect(trace(p.told)).toEqual([
      'worker-ready',
      'queued:queued',
      'assigned:assigned',
      'started:running',
      'ended:succeeded',
    ]);
    // the rows the events carry are the rows as stored: nothing was read back to tell them
    const ended = p.told.at(-1)!;
    expect(ended.type === 'ended' && ended.run).toEqual(p.run(run!.id));
    expect(w.runs.size).toBe(0);
  });

  it('retries a failed attempt and dispatches the retry because the attempt ended', async () => {
    const w = p.worker('w1');
    const [run] = p.enqueue(p.job({ name: 'flaky', retries: 1, retryBackoffSec: 0 }));
    await p.settle();
    p.lifecycle.started(w, run!.id, 1, p.clock.t);
    p.lifecycle.finished(w, finished(run!.id, p.clock.t, 1));
    await p.settle();
    expect(ofType(w, 'assign').map((m) => m.run.attempt)).toEqual([1, 2]);
    expect(trace(p.told).slice(-2)).toEqual(['ended:queued', 'assigned:assigned']);
    expect(p.run(run!.id)).toMatchObject({ state: 'assigned', attempt: 2, worker: 'w1' });
  });

  it('fences a stale attempt: its messages are answered and change nothing', async () => {
    const w = p.worker('w1');
    const [run] = p.enqueue(p.job({ name: 'fenced', retries: 1, retryBackoffSec: 0 }));
    await p.settle();
    p.lifecycle.lose(run!.id); // lease ran out: attempt 1 lost, attempt 2 assigned
    await p.settle();
    expect(p.run(run!.id)).toMatchObject({ state: 'assigned', attempt: 2 });
    const before = p.told.length;

    expect(p.lifecycle.started(w, run!.id, 1, p.clock.t)).toMatchObject({ type: 'cancel', attempt: 1 });
    expect(p.lifecycle.finished(w, finished(run!.id, p.clock.t))).toEqual({
      type: 'finished-ack',
      runId: run!.id,
      attempt: 1,
    });
    // another worker claiming the current attempt is refused too
    const intruder = p.worker('w2');
    expect(p.lifecycle.started(intruder, run!.id, 2, p.clock.t)).toMatchObject({ type: 'cancel' });
    await p.settle();
    expect(p.run(run!.id)).toMatchObject({ state: 'assigned', attempt: 2, worker: 'w1' });
    expect(p.told.slice(before).map((e) => e.type)).toEqual(['worker-ready']); // w2 came; no run changed
  });

  it('puts a run the worker never started back in the queue, same attempt, and tells it as requeued', async () => {
    const w = p.worker('w1');
    const [run] = p.enqueue(p.job({ name: 'reclaim' }));
    await p.settle();
    p.lifecycle.reclaim(w, run!.id);
    await p.settle();
    // requeued, reclaimed, then dispatched again to the same free worker
    expect(trace(p.told).slice(-3)).toEqual(['requeued:queued', 'reclaimed:assigned', 'assigned:assigned']);
    expect(p.run(run!.id)).toMatchObject({ attempt: 1, state: 'assigned' });
  });

  it('cancels a queued run at once and an active one through its worker, after the commit', async () => {
    const job = p.job({ name: 'cancel', concurrency: 1 });
    const [a, b] = [p.enqueue(job)[0]!, p.enqueue(job)[0]!];
    const w = p.worker('w1', { capacity: 2 });
    await p.settle();
    p.lifecycle.cancel(p.run(b.id), 'not needed');
    p.lifecycle.cancel(p.run(a.id), 'stop');
    expect(ofType(w, 'cancel')).toEqual([]);
    await p.settle();
    expect(ofType(w, 'cancel')).toEqual([{ type: 'cancel', runId: a.id, attempt: 1, reason: 'stop' }]);
    expect(p.run(b.id)).toMatchObject({ state: 'cancelled', cancelReason: 'not needed' });
    expect(trace(p.told).at(-1)).toBe('ended:cancelled');
    expect(() => p.lifecycle.cancel(p.run(b.id), 'again')).toThrow(/already finished/);
  });

  it('tells nothing for a change whose savepoint failed, nor for a batch rolled back', async () => {
    p.worker('w1');
    await p.settle();
    const before = p.told.length;
    const job = p.job({ name: 'undone' });
    await p.settle();
    // an event queued inside a write that fails is dropped with the write's savepoint
    expect(() =>
      p.commit.write(() => {
        p.events.emit({ type: 'platform-undropped', platform: 'p' });
        throw new Error('the change fails');
      }),
    ).toThrow('the change fails');
    // a whole batch rolled back (its fsync found the disk full): none of its events are told
    p.enqueue(job);
    p.commit.beforeFlush(writeToFullDisk);
    expect(p.commit.flush()).toBe(false);
    await p.settle();
    expect(p.told.slice(before)).toEqual([]);
    expect(p.commit.rollbacks).toBe(1);
    expect(p.runs.list({ job: job.id, limit: 10 })).toEqual([]);
    // and the same enqueue, committed, is told and dispatched
    p.enqueue(job);
    await p.settle();
    expect(trace(p.told.slice(before))).toEqual(['queued:queued', 'assigned:assigned']);
  });
});
