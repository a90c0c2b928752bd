import type { RunResult } from '@builder/protocol';
import { silentLogger } from '../log.ts';
import { startServer, type RunningServer } from '../server.ts';
import type { JobRow, RunRow } from '../store/rows.ts';
import type { JobStore } from '../store/jobs.ts';
import type { NewRun, RunStore } from '../store/runs.ts';

interface Stores {
  runs: RunStore;
  jobs: Pick<JobStore, 'allocateNumber'>;
}

/** A run of `job` queued straight into the store (no enqueue, no events): what store and page tests build on. */
export function insertRun(s: Stores, job: Pick<JobRow, 'id'>, run: Partial<NewRun> & { queuedAt: number }): RunRow {
  return s.runs.insert({
    jobId: job.id,
    number: s.jobs.allocateNumber(job.id),
    platform: 'p',
    script: 'true',
    params: {},
    trigger: 'manual',
    maxAttempts: 1,
    retryBackoffSec: 0,
    timeoutSec: 60,
    killGraceSec: 1,
    priority: 0,
    ...run,
  });
}

/** Take a queued run through assigned (to `worker`) and started to `result`, at the times given. */
export function endRun(
  runs: RunStore,
  run: RunRow,
  result: RunResult,
  at: { assigned: number; started: number; finished: number },
  worker = 'w1',
): RunRow {
  runs.assign(run, worker, at.assigned);
  runs.start(runs.get(run.id)!, at.started);
  runs.finish(runs.get(run.id)!, result, at.finished, at.finished);
  return runs.get(run.id)!;
}

/** An in-process server on 127.0.0.1:0 with a fixed clock and no log: for tests that write rows directly. */
export function startQuietServer(dataDir: string, now: () => number): Promise<RunningServer> {
  return startServer({
    dataDir,
    host: '127.0.0.1',
    port: 0,
    leaseMs: 60_000,
    heartbeatMs: 10_000,
    missedGraceMs: 60_000,
    clock: { now },
    logger: silentLogger,
  });
}
