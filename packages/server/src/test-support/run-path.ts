import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobSpecSchema, type Finished, type ServerToWorker } from '@builder/protocol';
import { LogStore } from '../console/log-store.ts';
import { Observers } from '../console/observers.ts';
import { ArtifactStore } from '../store/artifacts.ts';
import { runView } from '../runs/views.ts';
import { Dispatcher } from '../dispatch/dispatcher.ts';
import { Registry, type ConnectedWorker } from '../workers/registry.ts';
import { silentLogger } from '../log.ts';
import { RunEvents, type RunEvent } from '../run-events.ts';
import { ActiveRuns } from '../runs/active.ts';
import { ConsoleIntake } from '../runs/console-intake.ts';
import { enqueue } from '../runs/enqueue.ts';
import { Lifecycle } from '../runs/lifecycle.ts';
import { resyncRuns } from '../runs/resync.ts';
import { StorageOutage } from '../storage/outage.ts';
import { migrate } from '../store/db.ts';
import { GroupCommit } from '../store/group-commit.ts';
import { HookStore } from '../store/hooks.ts';
import { JobStore } from '../store/jobs.ts';
import { PlatformStore } from '../store/platforms.ts';
import type { JobRow, RunRow } from '../store/rows.ts';
import { RunStore } from '../store/runs.ts';
import { SecretStore } from '../store/secrets.ts';
import { WorkerStore } from '../store/workers.ts';

/** A worker connection that keeps what it is sent. */
export interface FakeWorker extends ConnectedWorker {
  sent: ServerToWorker[];
}

/**
 * The run path without a server: the stores on an in-memory SQLite, the group commit, the events,
 * the lifecycle and the dispatcher, a clock the test moves. Console files go to a temp dir.
 */
export function runPath() {
  const dir = mkdtempSync(join(tmpdir(), 'builder-run-path-'));
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  migrate(db);
  const clock = { t: 1_000_000, now: () => clock.t };
  const commit = new GroupCommit(db);
  const events = new RunEvents({ commit, logger: silentLogger });
  /** Every event, in the order delivered. */
  const told: RunEvent[] = [];
  events.subscribe((e) => told.push(e));
  const logs = new LogStore(dir);
  const deps = {
    db,
    commit,
    events,
    runs: new RunStore(db),
    jobs: new JobStore(db),
    platforms: new PlatformStore(db),
    secrets: new SecretStore(db),
    hooks: new HookStore(db),
    registry: new Registry(),
    workers: new WorkerStore(db),
    active: new ActiveRuns(),
    logs,
    observers: new Observers(logs),
    artifacts: new ArtifactStore(db),
    version: 'test',
    storage: new StorageOutage({ dataDir: dir, clock, logger: silentLogger }),
    attemptKey: Buffer.alloc(32, 7),
    clock,
    logger: silentLogger,
    leaseMs: 30_000,
  };
  events.subscribe(deps.observers.listener((run) => runView(deps, run)));
  // as the server does: a batch rolled back puts memory back to what the database says
  commit.onStorageFull = (_err, rolledBack) => rolledBack && resyncRuns(deps);
  const lifecycle = new Lifecycle(deps);
  const dispatcher = new Dispatcher({
    ...deps,
    systemLine: (id, text) => lifecycle.systemLine(id, text),
    publicUrl: () => '',
  });
  const intake = new ConsoleIntake({ ...deps, lifecycle });

  return {
    ...deps,
    clock,
    told,
    lifecycle,
    dispatcher,
    intake,
    job(spec: Record<string, unknown> & { name: string }): JobRow {
      const parsed = JobSpecSchema.parse({ platforms: ['p'], script: 'true', schedule: null, ...spec });
      return commit.write(() => deps.jobs.upsert(parsed, null, clock.t)).job;
    },
    enqueue(job: JobRow, opts: { platforms?: string[]; next?: boolean } = {}): RunRow[] {
      return enqueue(deps, job, { params: {}, trigger: 'manual', next: false, ...opts });
    },
    /** Connect a worker (as a hello does, minus re-attach). */
    worker(name: string, opts: { platform?: string; capacity?: number } = {}): FakeWorker {
      const w: FakeWorker = {
        name,
        platform: opts.platform ?? 'p',
        labels: [],
        capacity: opts.capacity ?? 1,
        executor: 'host',
        connectedAt: clock.t,
        lastSeenAt: clock.t,
        runs: new Set(),
        refusing: false,
        sent: [],
        send: (m) => w.sent.push(m),
        close: () => undefined,
      };
      deps.registry.add(w);
      events.emit({ type: 'worker-ready', worker: name });
      return w;
    },
    run(id: string): RunRow {
      return deps.runs.get(id)!;
    },
    /** Commit until nothing is pending, letting the dispatch each batch's events cause happen. */
    async settle(): Promise<void> {
      for (let i = 0; i < 20; i++) {
        commit.flush();
        await Promise.resolve();
        if (!commit.pending) return;
      }
      throw new Error('the run path does not settle');
    },
    close(): void {
      commit.abandon(); // no flush left for after the database is closed
      dispatcher.stop();
      deps.storage.stop();
      deps.logs.closeAll();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type RunPath = ReturnType<typeof runPath>;

/** A worker's `finished` for attempt `attempt` of `runId`: exited `code`, no output (lastSeq 0). */
export function finished(runId: string, at: number, code = 0, attempt = 1): Finished {
  return { type: 'finished', runId, attempt, lastSeq: 0, result: { kind: 'exited', code }, finishedAt: at };
}

/** The types of the events told (console output aside), with the run's state: a readable trace to compare. */
export function trace(told: RunEvent[]): string[] {
  return told.filter((e) => e.type !== 'output').map((e) => ('run' in e ? `${e.type}:${e.run.state}` : e.type));
}
