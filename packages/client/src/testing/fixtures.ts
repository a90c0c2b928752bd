import type { JobView, RunView } from '@builder/protocol';

export const RUN_ID = '2b1c6f4e-8d0a-4c57-9a53-0f6d3b2e1a90';
export const RUN_ID_2 = '7e4f0a1b-3c2d-4e5f-8a9b-0c1d2e3f4a5b';

export function makeRun(overrides: Partial<RunView> = {}): RunView {
  return {
    id: RUN_ID,
    job: 'hello',
    number: 7,
    platform: 'debian-12',
    state: 'queued',
    attempt: 1,
    maxAttempts: 1,
    params: {},
    trigger: 'manual',
    worker: null,
    queuedAt: 1_700_000_000_000,
    startedAt: null,
    finishedAt: null,
    notBefore: null,
    result: null,
    waiting: null,
    cancelReason: null,
    ref: null,
    commit: null,
    inputs: [],
    after: null,
    ...overrides,
  };
}

export function runningRun(overrides: Partial<RunView> = {}): RunView {
  return makeRun({ state: 'running', worker: 'w1', startedAt: 1_700_000_001_000, ...overrides });
}

export function finishedRun(code: number, overrides: Partial<RunView> = {}): RunView {
  return makeRun({
    state: code === 0 ? 'succeeded' : 'failed',
    worker: 'w1',
    startedAt: 1_700_000_001_000,
    finishedAt: 1_700_000_002_200,
    result: { kind: 'exited', code },
    ...overrides,
  });
}

export function makeJob(overrides: Partial<JobView> = {}): JobView {
  return {
    name: 'hello',
    platforms: ['debian-12'],
    schedule: null,
    timezone: 'UTC',
    missed: 'once',
    timeoutSec: 3600,
    killGraceSec: 10,
    retries: 0,
    retryBackoffSec: 10,
    concurrency: 1,
    params: {},
    nextRunAt: null,
    template: null,
    alertWebhooks: [],
    secrets: [],
    definition: null,
    source: null,
    after: null,
    ...overrides,
  };
}
