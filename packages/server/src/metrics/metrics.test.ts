import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../clock.ts';
import { Registry } from '../workers/registry.ts';
import { silentLogger } from '../log.ts';
import { startServer, type RunningServer } from '../server.ts';
import { openDb, type Db } from '../store/db.ts';
import { JobStore } from '../store/jobs.ts';
import type { RunRow } from '../store/rows.ts';
import { RunHistory } from '../store/run-history.ts';
import { RunStore } from '../store/runs.ts';
import { Metrics } from './metrics.ts';

const dirs: string[] = [];
const dbs: Db[] = [];
const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const db of dbs.splice(0)) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'builder-metrics-'));
  dirs.push(d);
  return d;
}

function metrics(): Metrics {
  const db = openDb(tempDir());
  dbs.push(db);
  return new Metrics({
    runs: new RunStore(db),
    jobs: new JobStore(db),
    history: new RunHistory(db),
    workers: new Registry(),
  });
}

const run = (over: Partial<RunRow>): RunRow =>
  ({
    id: 'r1',
    job: 'nightly',
    platform: 'debian-12',
    attempt: 1,
    maxAttempts: 3,
    retryBackoffSec: 10,
    queuedAt: 1_000_000,
    startedAt: null,
    ...over,
  }) as RunRow;

describe('Metrics', () => {
  it('counts lost attempts, retries and queue waits since a retry became eligible', async () => {
    const m = metrics();
    const first = run({ startedAt: 1_002_000 });
    m.started(run({}), 1_002_000); // waited 2 s in the queue
    m.attemptEnded(first, 'queued', { kind: 'lost' }, 1_005_000, 1_005_000); // retry eligible at 1_015_000
    m.started(run({ attempt: 2 }), 1_015_500); // waited 0.5 s after its backoff
    m.attemptEnded(run({ attempt: 2, startedAt: 1_015_500 }), 'succeeded', { kind: 'exited', code: 0 }, 1_020_500, 0);
    const text = await m.scrape();
    expect(text).toContain('builder_runs_lost_total{builder_job="nightly",platform="debian-12"} 1');
    expect(text).toContain(
      'builder_runs_finished_total{builder_job="nightly",platform="debian-12",state="succeeded"} 1',
    );
    expect(text).toContain('builder_run_queue_wait_seconds_sum{platform="debian-12"} 2.5');
    expect(text).toContain('builder_run_queue_wait_seconds_count{platform="debian-12"} 2');
    expect(text).toContain('builder_run_duration_seconds_sum{platform="debian-12"} 5');
    expect(text).toContain('builder_run_duration_seconds_count{platform="debian-12"} 1');
  });

  it('counts a queued run cancelled before it started', async () => {
    const m = metrics();
    m.attemptEnded(run({ id: 'r2' }), 'cancelled', { kind: 'cancelled', reason: 'by a user' }, 1_000_000, 1_000_000);
    expect(await m.scrape()).toContain(
      'builder_runs_finished_total{builder_job="nightly",platform="debian-12",state="cancelled"} 1',
    );
  });

  it('keeps each server in its own registry: two in one process do not clash', async () => {
    for (let i = 0; i < 2; i++) {
      servers.push(
        await startServer({
          dataDir: tempDir(),
          host: '127.0.0.1',
          port: 0,
          leaseMs: 60_000,
          heartbeatMs: 10_000,
          missedGraceMs: 60_000,
          clock: systemClock,
          logger: silentLogger,
        }),
      );
    }
    servers[0]!.ctx.metrics!.attemptEnded(run({}), 'cancelled', { kind: 'cancelled', reason: 'x' }, 1, 1);
    const [a, b] = await Promise.all(servers.map((s) => fetch(`${s.url}/metrics`).then((r) => r.text())));
    expect(a).toContain('builder_runs_finished_total{builder_job="nightly",platform="debian-12",state="cancelled"} 1');
    expect(b).not.toContain('builder_runs_finished_total{');
    expect(b).toContain('process_cpu_user_seconds_total');
  });
});
