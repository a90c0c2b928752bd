import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  HelloSchema,
  JobSpecSchema,
  LIMITS,
  ProtocolError,
  TRANSITIONS,
  WorkerToServerSchema,
  canTransition,
  decode,
  formatResult,
  negotiateVersion,
  parseRunRef,
  stateForResult,
  type RunState,
} from './index.ts';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err instanceof ProtocolError ? err.code : 'other';
  }
  return 'none';
};

describe('decode', () => {
  it('refuses non-JSON, unknown types and oversized messages with stable codes', () => {
    expect(codeOf(() => decode(WorkerToServerSchema, '{nope'))).toBe(ErrorCode.BadMessage);
    expect(codeOf(() => decode(WorkerToServerSchema, '{"type":"explode"}'))).toBe(ErrorCode.BadMessage);
    expect(codeOf(() => decode(WorkerToServerSchema, 'x'.repeat(LIMITS.maxMessageBytes + 1)))).toBe(
      ErrorCode.MessageTooLarge,
    );
  });

  it('names the field that is wrong', () => {
    const bad = JSON.stringify({ type: 'started', runId: 'not-a-uuid', attempt: 1, startedAt: 0 });
    expect(() => decode(WorkerToServerSchema, bad)).toThrow(/runId/);
  });

  it('refuses console output as JSON: it is a binary frame now', () => {
    const json = JSON.stringify({
      type: 'output',
      runId: '0f8fad5b-d9cb-469f-a165-70867728950e',
      attempt: 1,
      seq: 1,
      ts: 0,
      stream: 'out',
      data: 'x',
    });
    expect(codeOf(() => decode(WorkerToServerSchema, json))).toBe(ErrorCode.BadMessage);
  });

  it('requires a worker description in a worker hello', () => {
    expect(
      codeOf(() => decode(HelloSchema, JSON.stringify({ type: 'hello', versions: [1], role: 'worker', token: 't' }))),
    ).toBe(ErrorCode.BadMessage);
    expect(decode(HelloSchema, JSON.stringify({ type: 'hello', versions: [1], role: 'client', token: 't' })).role).toBe(
      'client',
    );
  });
});

describe('run state machine', () => {
  it('has no way out of a terminal state and no way back to assigned from running', () => {
    for (const s of ['succeeded', 'failed', 'timeout', 'cancelled', 'lost', 'error'] as RunState[])
      expect(TRANSITIONS[s]).toEqual([]);
    expect(canTransition('running', 'assigned')).toBe(false);
    expect(canTransition('queued', 'running')).toBe(false);
    expect(canTransition('running', 'queued')).toBe(true); // a retry
  });

  it('formats every result kind distinctly', () => {
    expect(formatResult({ kind: 'exited', code: 0 })).toBe('exited 0');
    expect(formatResult({ kind: 'signalled', signal: 'SIGKILL' })).toBe('signalled SIGKILL');
    expect(formatResult({ kind: 'error', message: 'cannot write /x' })).toBe('error: cannot write /x');
    expect(stateForResult({ kind: 'exited', code: 2 })).toBe('failed');
    expect(stateForResult({ kind: 'timeout' })).toBe('timeout');
  });
});

describe('misc', () => {
  it('negotiates the highest common version', () => {
    expect(negotiateVersion([1, 7])).toBe(1);
    expect(negotiateVersion([7])).toBeUndefined();
  });

  it('parses run references', () => {
    expect(parseRunRef('nightly/12')).toEqual({ kind: 'number', job: 'nightly', number: 12 });
    expect(parseRunRef('nightly#3')).toEqual({ kind: 'number', job: 'nightly', number: 3 });
    expect(parseRunRef('0F8FAD5B-D9CB-469F-A165-70867728950E')).toEqual({
      kind: 'id',
      id: '0f8fad5b-d9cb-469f-a165-70867728950e',
    });
    expect(parseRunRef('nightly/0')).toBeUndefined();
    expect(parseRunRef('../etc')).toBeUndefined();
  });
});

describe('job spec', () => {
  const base = { name: 'j', platforms: ['debian-12', 'freebsd-14'], schedule: null };
  const ok = (spec: object) => JobSpecSchema.safeParse(spec).success;

  it('takes one script, or one script per platform with the template it came from', () => {
    expect(JobSpecSchema.parse({ ...base, script: 'true' }).template).toBeNull();
    const spec = JobSpecSchema.parse({
      ...base,
      scripts: { 'debian-12': 'echo d', 'freebsd-14': 'echo f' },
      template: { name: 't', vars: { REPO: 'x' } },
    });
    expect(spec.scripts).toEqual({ 'debian-12': 'echo d', 'freebsd-14': 'echo f' });
    expect(spec.template).toEqual({ name: 't', vars: { REPO: 'x' } });
  });

  it('refuses both, neither, a platform without a script and a script for another platform', () => {
    const scripts = { 'debian-12': 'a', 'freebsd-14': 'b' };
    expect(ok({ ...base })).toBe(false);
    expect(ok({ ...base, script: 'true', scripts })).toBe(false);
    expect(ok({ ...base, scripts: { 'debian-12': 'a' } })).toBe(false);
    expect(ok({ ...base, scripts: { ...scripts, 'alpine-3': 'c' } })).toBe(false);
    expect(ok({ ...base, scripts: { ...scripts, 'debian-12': '' } })).toBe(false);
    expect(ok({ ...base, scripts, template: { name: 't', vars: { lower: 'x' } } })).toBe(false);
    expect(() => decode(JobSpecSchema, JSON.stringify({ ...base, scripts: { 'debian-12': 'a' } }))).toThrow(
      /no script for platform freebsd-14/,
    );
  });
});
