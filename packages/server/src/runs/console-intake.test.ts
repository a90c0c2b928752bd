import { readFileSync, rmSync, symlinkSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { insertRun } from '../test-support/runs.ts';
import { JobSpecSchema, type RunView, type ServerToWorker } from '@builder/protocol';
import { RunEvents } from '../run-events.ts';
import { LogStore } from '../console/log-store.ts';
import { Observers } from '../console/observers.ts';
import type { Context } from '../context.ts';
import { Registry, type ConnectedWorker } from '../workers/registry.ts';
import { StorageOutage } from '../storage/outage.ts';
import type { Db } from '../store/db.ts';
import { GroupCommit } from '../store/group-commit.ts';
import { JobStore } from '../store/jobs.ts';
import { RunStore } from '../store/runs.ts';
import { ActiveRuns } from './active.ts';
import { ConsoleIntake } from './console-intake.ts';
import { Lifecycle } from './lifecycle.ts';
import { resumeRuns, resyncRuns } from './resync.ts';
import { writeToFullDisk } from '../test-support/full-disk.ts';
import { removeTempDb, tempDb } from '../test-support/temp-db.ts';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

describe('console intake across a batch that could not be committed', () => {
  let dir: string;
  let db: Db;
  let ctx: Context;
  let intake: ConsoleIntake;
  let sent: ServerToWorker[];
  let worker: ConnectedWorker;

  /** A queued run, assigned to `w1` durably, as the dispatcher would. */
  const assigned = (name: string): string => {
    const { job } = ctx.jobs.upsert(
      JobSpecSchema.parse({ name, platforms: ['p'], script: 'true', schedule: null }),
      null,
      0,
    );
    const run = insertRun(ctx, job, { queuedAt: 1 });
    ctx.runs.assign(run, 'w1', 2);
    resyncRuns(ctx);
    return run.id;
  };
  const chunk = (runId: string, seq: number) =>
    intake.output(
      worker,
      { type: 'output', runId, attempt: 1, seq, ts: 0, stream: 'stdout' },
      Buffer.from(`line ${seq}\n`),
    );
  const file = (runId: string) => readFileSync(ctx.logs.path(runId), 'utf8');

  beforeEach(() => {
    ({ dir, db } = tempDb('builder-intake-'));
    const logs = new LogStore(dir);
    const clock = { now: () => Date.now() };
    ctx = {
      db,
      commit: new GroupCommit(db),
      jobs: new JobStore(db),
      runs: new RunStore(db),
      registry: new Registry(),
      active: new ActiveRuns(),
      logs,
      observers: new Observers(logs),
      storage: new StorageOutage({ dataDir: dir, clock, logger: quiet, probeBytes: 4096 }),
      clock,
      logger: quiet,
      leaseMs: 60_000,
    } as unknown as Context;
    ctx.events = new RunEvents({ commit: ctx.commit, logger: quiet });
    ctx.events.subscribe(ctx.observers.listener(() => ({}) as RunView));
    // as server.ts wires it
    ctx.commit.onStorageFull = (err, rolledBack) => {
      if (rolledBack) resyncRuns(ctx);
      ctx.storage.enter(err, 'test');
    };
    ctx.storage.onEnd(() => resumeRuns(ctx));
    sent = [];
    worker = {
      name: 'w1',
      platform: 'p',
      labels: [],
      capacity: 2,
      executor: 'host',
      connectedAt: 0,
      lastSeenAt: 0,
      runs: new Set(),
      refusing: false,
      send: (m) => sent.push(m),
      close: () => undefined,
    };
    ctx.registry.add(worker);
    intake = new ConsoleIntake({ ...ctx, lifecycle: new Lifecycle(ctx) }, (id) => ctx.observers.watching(id));
  });
  afterEach(() => {
    ctx.storage.stop();
    ctx.logs.closeAll();
    removeTempDb(dir, db);
  });

  it('acknowledges nothing of it, expects the same chunks again and stores them exactly once', () => {
    const runId = assigned('build');
    // someone watching the console live sees only what is durable, and so every line once
    let seen = '';
    ctx.observers.add({
      sub: 1,
      runId,
      console: true,
      finished: undefined,
      sink: {
        send: (e) => {
          if (e.type === 'event' && e.event.kind === 'console') seen += e.event.data;
        },
        bufferedAmount: () => 0,
        closed: false,
      },
    });
    chunk(runId, 1);
    expect(ctx.commit.flush()).toBe(true);
    expect(sent).toEqual([{ type: 'ack', runId, attempt: 1, seq: 1 }]);

    chunk(runId, 2);
    chunk(runId, 3);
    ctx.commit.beforeFlush(writeToFullDisk); // the batch's fsync finds the disk full
    expect(ctx.commit.flush()).toBe(false);
    expect(sent).toHaveLength(1); // no ack for 2 or 3
    expect(ctx.runs.get(runId)).toMatchObject({ logSeq: 1, logBytes: 7 });
    expect(file(runId)).toBe('line 1\n');
    expect(seen).toBe('line 1\n');
    expect(ctx.active.get(runId)?.nextSeq).toBe(2);
    expect(worker.runs.has(runId)).toBe(true);
    expect(ctx.storage.refusing).toBe(true);

    // while refusing: taken from the wire, not stored, not answered
    expect(chunk(runId, 2)).toBeUndefined();
    expect(ctx.commit.pending).toBe(false);
    expect(file(runId)).toBe('line 1\n');

    // room again: the worker is asked for everything from the first chunk the server lacks
    expect(ctx.storage.probe()).toBe(true);
    expect(ctx.storage.refusing).toBe(false);
    expect(sent.at(-1)).toEqual({ type: 'resend', runId, attempt: 1, fromSeq: 2 });
    chunk(runId, 2);
    chunk(runId, 3);
    expect(ctx.commit.flush()).toBe(true);
    expect(sent.at(-1)).toEqual({ type: 'ack', runId, attempt: 1, seq: 3 });
    expect(chunk(runId, 1)).toEqual({ type: 'ack', runId, attempt: 1, seq: 3 }); // a late duplicate
    expect(file(runId)).toBe('line 1\nline 2\nline 3\n');
    expect(seen).toBe('line 1\nline 2\nline 3\n');
    expect(ctx.runs.get(runId)).toMatchObject({ logSeq: 3, logBytes: 21 });
  });

  it('refuses a chunk whose append hits ENOSPC without counting it', () => {
    const runId = assigned('full');
    ctx.logs.close(runId);
    rmSync(ctx.logs.path(runId), { force: true });
    symlinkSync('/dev/full', ctx.logs.path(runId));
    expect(chunk(runId, 1)).toBeUndefined();
    expect(ctx.commit.flush()).toBe(true);
    expect(sent).toEqual([]);
    expect(ctx.active.get(runId)?.nextSeq).toBe(1);
    expect(ctx.storage.refusing).toBe(true);
  });
});
