import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobSpecSchema, type Event } from '@builder/protocol';
import type { ObserverSink } from '../console/observers.ts';
import { runPath, trace, type RunPath } from '../test-support/run-path.ts';
import { createHandlers, type ClientSession } from './methods.ts';

/** A client connection whose events are kept. */
function session(): ClientSession & { events: Event[] } {
  const events: Event[] = [];
  let subs = 0;
  const sink: ObserverSink = { send: (e) => void events.push(e), bufferedAmount: () => 0, closed: false };
  return { sink, nextSub: () => ++subs, events };
}

describe('API methods on the run path (in-memory SQLite, no server)', () => {
  let p: RunPath;
  let api: ReturnType<typeof createHandlers>;
  let rescheduled: number;
  beforeEach(() => {
    p = runPath();
    rescheduled = 0;
    api = createHandlers({ ...p, scheduler: { reschedule: () => void rescheduled++ } });
  });
  afterEach(() => p.close());

  const schedule = (name: string, extra: object = {}) =>
    api.schedule(JobSpecSchema.parse({ name, platforms: ['p'], script: 'true', schedule: null, ...extra }), session());

  it('executes a job: the runs are queued, and dispatched because they were, in the same batch', async () => {
    schedule('j').afterReply?.();
    expect(rescheduled).toBe(1);
    const w = p.worker('w1');
    const { result } = api.execute({ name: 'j', params: {}, next: false, inputs: [], inputsFrom: [] }, session());
    expect(result.runs.map((r) => r.state)).toEqual(['queued']);
    await p.settle();
    expect(trace(p.told).slice(-2)).toEqual(['queued:queued', 'assigned:assigned']);
    expect(w.sent.map((m) => m.type)).toEqual(['assign']);
    expect(api.info({}, session()).result.running.map((r) => r.id)).toEqual([result.runs[0]!.id]);
  });

  it('says why a run waits, and undropping its platform dispatches it', async () => {
    schedule('j');
    p.worker('w1');
    api.dropPlatform({ platform: 'p' }, session());
    const { result } = api.execute({ name: 'j', params: {}, next: false, inputs: [], inputsFrom: [] }, session());
    await p.settle();
    expect(api.run({ run: result.runs[0]!.id }, session()).result.waiting).toMatch(/platform p is dropped/);
    api.undropPlatform({ platform: 'p' }, session());
    await p.settle();
    expect(api.run({ run: result.runs[0]!.id }, session()).result.state).toBe('assigned');
  });

  it('tells an observer each state change once committed, then the end', async () => {
    schedule('j');
    const { result } = api.execute({ name: 'j', params: {}, next: false, inputs: [], inputsFrom: [] }, session());
    await p.settle();
    const s = session();
    const id = result.runs[0]!.id;
    api.observe({ run: id, console: false }, s).afterReply?.();
    api.cancel({ run: id }, session());
    expect(s.events).toEqual([]);
    await p.settle();
    expect(s.events.map((e) => e.event.kind)).toEqual(['state', 'end']);
    expect(s.events.at(-1)).toMatchObject({ event: { kind: 'end', run: { state: 'cancelled' } } });
  });

  it('refuses what a user got wrong with a code that says so', () => {
    expect(() => api.execute({ name: 'nope', params: {}, next: false }, session())).toThrow(/no job named "nope"/);
    expect(() => api.run({ run: 'x' }, session())).toThrow(/is not a run/);
  });
});
