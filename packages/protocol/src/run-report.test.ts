import { describe, expect, it } from 'vitest';
import { decode } from './codec.ts';
import { LIMITS } from './limits.ts';
import { WorkerToServerSchema } from './worker-messages.ts';

const finished = {
  type: 'finished',
  runId: '00000000-0000-4000-8000-000000000001',
  attempt: 1,
  lastSeq: 0,
  result: { kind: 'exited', code: 0 },
  finishedAt: 1,
};

describe('finished: summary and usage', () => {
  it("accepts an older worker's message without them", () => {
    const msg = decode(WorkerToServerSchema, JSON.stringify(finished));
    expect(msg).toEqual(finished);
  });

  it('carries the summary and what the run cost', () => {
    const full = {
      ...finished,
      summary: { markdown: '# hi', truncated: false },
      usage: { cpuMs: 12.5, peakMemoryBytes: 1024, source: 'cgroup+proc' },
    };
    expect(decode(WorkerToServerSchema, JSON.stringify(full))).toEqual(full);
  });

  it('refuses a summary over the limit and usage it cannot believe', () => {
    const long = { ...finished, summary: { markdown: 'a'.repeat(LIMITS.maxSummaryBytes + 1), truncated: true } };
    expect(() => decode(WorkerToServerSchema, JSON.stringify(long))).toThrow(/summary/);
    for (const usage of [
      { cpuMs: -1, peakMemoryBytes: 0, source: 'proc' },
      { cpuMs: 1, peakMemoryBytes: 1.5, source: 'proc' },
      { cpuMs: 1, peakMemoryBytes: null, source: 'guess' },
    ]) {
      expect(() => decode(WorkerToServerSchema, JSON.stringify({ ...finished, usage }))).toThrow(/usage/);
    }
  });
});
