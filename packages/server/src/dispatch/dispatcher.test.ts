import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ServerToWorker } from '@builder/protocol';
import { runPath, type FakeWorker, type RunPath, finished } from '../test-support/run-path.ts';

const assigned = (w: FakeWorker) =>
  w.sent
    .filter((m): m is Extract<ServerToWorker, { type: 'assign' }> => m.type === 'assign')
    .map((m) => `${m.run.job}#${m.run.number}`);

describe('Dispatcher on the run path (in-memory SQLite, no server)', () => {
  let p: RunPath;
  beforeEach(() => {
    p = runPath();
  });
  afterEach(() => p.close());

  it('assigns "run next" first, then in the order queued, within the workers’ capacity', async () => {
    const a = p.job({ name: 'a', concurrency: 10 });
    const b = p.job({ name: 'b', concurrency: 10 });
    p.enqueue(a);
    p.enqueue(b);
    p.enqueue(a);
    p.enqueue(b, { next: true });
    await p.settle();
    const w = p.worker('w1', { capacity: 3 });
    await p.settle();
    expect(assigned(w)).toEqual(['b#2', 'a#1', 'b#1']);
    expect(p.runs.queued(10).map((r) => `${r.job}#${r.number}`)).toEqual(['a#2']);
  });

  it('gives each run to the worker with the most free slots, on its platform only', async () => {
    const small = p.worker('small', { capacity: 1 });
    const big = p.worker('big', { capacity: 3 });
    const other = p.worker('other', { platform: 'q', capacity: 4 });
    const job = p.job({ name: 'j', concurrency: 10 });
    for (let i = 0; i < 3; i++) p.enqueue(job);
    await p.settle();
    expect(assigned(big)).toEqual(['j#1', 'j#2']);
    expect(assigned(small)).toEqual(['j#3']);
    expect(assigned(other)).toEqual([]);
  });

  it('keeps a job within its concurrency and goes on when a run of it ends', async () => {
    const w = p.worker('w1', { capacity: 4 });
    const job = p.job({ name: 'one-at-a-time', concurrency: 1 });
    const [first] = p.enqueue(job);
    p.enqueue(job);
    await p.settle();
    expect(assigned(w)).toEqual(['one-at-a-time#1']);
    expect(p.runs.nextQueued('p', p.clock.t)).toBeUndefined(); // the second waits on the limit
    p.lifecycle.finished(w, finished(first!.id, p.clock.t));
    await p.settle();
    expect(assigned(w)).toEqual(['one-at-a-time#1', 'one-at-a-time#2']);
  });

  it('assigns nothing on a dropped platform until it is undropped', async () => {
    const w = p.worker('w1');
    p.commit.write(() => p.platforms.drop('p', p.clock.t));
    p.enqueue(p.job({ name: 'j' }));
    await p.settle();
    expect(assigned(w)).toEqual([]);
    p.commit.write(() => p.platforms.undrop('p'));
    p.events.emit({ type: 'platform-undropped', platform: 'p' });
    await p.settle();
    expect(assigned(w)).toEqual(['j#1']);
  });

  it('skips a worker that refused an assignment until it reports an attempt over', async () => {
    const w = p.worker('w1', { capacity: 2 });
    const job = p.job({ name: 'j', concurrency: 10 });
    const [first] = p.enqueue(job);
    await p.settle();
    p.lifecycle.rejected(w, first!.id, 1, 'no room');
    await p.settle();
    expect(w.refusing).toBe(true);
    expect(assigned(w)).toEqual(['j#1']); // not given back to the worker that refused it
    // any finished (a stale one too) frees it
    p.lifecycle.finished(w, finished('not-a-run', p.clock.t));
    await p.settle();
    expect(assigned(w)).toEqual(['j#1', 'j#1']);
  });

  it('assigns in the batch that queued the run: one commit, the assign sent after it', async () => {
    const w = p.worker('w1');
    await p.settle();
    const commits = p.commit.commits;
    p.enqueue(p.job({ name: 'j' }));
    expect(assigned(w)).toEqual([]);
    await p.settle();
    expect(p.commit.commits - commits).toBe(1);
    expect(assigned(w)).toEqual(['j#1']);
  });
});
