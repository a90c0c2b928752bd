import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { insertRun } from '../test-support/runs.ts';
import { JobSpecSchema, type RunResult, type RunState } from '@builder/protocol';
import type { Logger } from '../log.ts';
import { openDb, type Db } from '../store/db.ts';
import { RunEvents } from '../run-events.ts';
import { RunHistory } from '../store/run-history.ts';
import { GroupCommit } from '../store/group-commit.ts';
import { JobStore } from '../store/jobs.ts';
import type { RunRow } from '../store/rows.ts';
import { RunStore } from '../store/runs.ts';
import { Alerts } from './alerts.ts';
import { eventsForEnd, type AlertEvent } from './events.ts';
import { OutboxSender } from './outbox.ts';
import { DEFAULT_DELIVERY } from './queue.ts';
import { AlertOutboxStore } from '../store/alert-outbox.ts';
import { afterEnv, alertmanagerAlerts, type AlertTarget } from './targets.ts';

const run = { id: 'r-1', job: 'nightly', number: 7, platform: 'debian-12', attempt: 2 };
const T = Date.parse('2026-01-02T03:04:05Z');
const ends = (state: RunState, result: RunResult, previous?: RunState) =>
  eventsForEnd(run, state, result, previous, 'https://ci.example', T).map((e) => e.event);

describe('which events a run end raises', () => {
  it('failure for a terminal failed, timeout, error or lost run; nothing while it is retried', () => {
    expect(ends('failed', { kind: 'exited', code: 1 })).toEqual(['failure']);
    expect(ends('timeout', { kind: 'timeout' })).toEqual(['failure']);
    expect(ends('error', { kind: 'error', message: 'no sh' })).toEqual(['failure']);
    expect(ends('queued', { kind: 'exited', code: 1 })).toEqual([]);
    expect(ends('cancelled', { kind: 'cancelled', reason: 'x' })).toEqual([]);
  });

  it('lost for every lost attempt, retried or not', () => {
    expect(ends('queued', { kind: 'lost' })).toEqual(['lost']);
    expect(ends('lost', { kind: 'lost' })).toEqual(['lost', 'failure']);
  });

  it('recovery only when the previous finished run did not succeed', () => {
    const ok: RunResult = { kind: 'exited', code: 0 };
    expect(ends('succeeded', ok, 'failed')).toEqual(['recovery']);
    expect(ends('succeeded', ok, 'lost')).toEqual(['recovery']);
    expect(ends('succeeded', ok, 'succeeded')).toEqual([]);
    expect(ends('succeeded', ok, undefined)).toEqual([]);
  });

  it('carries the run and a link', () => {
    const [e] = eventsForEnd(run, 'failed', { kind: 'exited', code: 3 }, undefined, 'https://ci.example/', T);
    expect(e).toEqual({
      event: 'failure',
      job: 'nightly',
      run: {
        id: 'r-1',
        number: 7,
        platform: 'debian-12',
        state: 'failed',
        result: 'exited 3',
        attempt: 2,
        url: 'https://ci.example/job/nightly/run/7',
      },
      time: '2026-01-02T03:04:05.000Z',
    });
  });
});

describe('target formats', () => {
  const [failure] = eventsForEnd(run, 'failed', { kind: 'exited', code: 3 }, undefined, 'https://ci', T);
  const [recovery] = eventsForEnd(run, 'succeeded', { kind: 'exited', code: 0 }, 'failed', 'https://ci', T + 1000);

  it('Alertmanager: a failure fires, the recovery resolves the same label set', () => {
    const [fire] = alertmanagerAlerts(failure!, 'https://ci', { now: T + 500, aheadMs: 240_000 });
    const [resolve] = alertmanagerAlerts(recovery!, 'https://ci');
    expect(fire).toMatchObject({
      labels: { alertname: 'BuilderRunFailed', builder_job: 'nightly', platform: 'debian-12', severity: 'critical' },
      annotations: { run_url: 'https://ci/job/nightly/run/7', result: 'exited 3' },
      generatorURL: 'https://ci/job/nightly/run/7',
      startsAt: '2026-01-02T03:04:05.000Z',
    });
    // ahead of now, so Alertmanager keeps it firing until the next re-send
    expect(fire!.endsAt).toBe('2026-01-02T03:08:05.500Z');
    expect(fire!.annotations.summary).toContain('exited 3');
    expect(resolve!.labels).toEqual(fire!.labels);
    expect(resolve!.endsAt).toBe('2026-01-02T03:04:06.000Z');
  });

  it('Alertmanager: missed slots and lost attempts have their own alert names', () => {
    const missed: AlertEvent = {
      event: 'missed',
      job: 'nightly',
      run: null,
      time: '2026-01-02T03:04:05.000Z',
      due: '2026-01-02T03:00:00.000Z',
      policy: 'once',
      platforms: ['a', 'b'],
    };
    expect(alertmanagerAlerts(missed, 'https://ci')[0]).toMatchObject({
      labels: { alertname: 'BuilderScheduleMissed', builder_job: 'nightly', platform: 'a,b', severity: 'warning' },
      generatorURL: 'https://ci',
    });
    const [lost] = eventsForEnd(run, 'queued', { kind: 'lost' }, undefined, 'https://ci', T);
    expect(alertmanagerAlerts(lost!, 'https://ci')[0]!.labels.alertname).toBe('BuilderRunLost');
  });

  it('after-hook environment', () => {
    expect(afterEnv(failure!)).toMatchObject({
      EVENT: 'failure',
      JOB: 'nightly',
      RUN: '7',
      RUN_ID: 'r-1',
      RESULT: 'failed',
      RESULT_DETAIL: 'exited 3',
      PLATFORM: 'debian-12',
      URL: 'https://ci/job/nightly/run/7',
    });
  });
});

function recordingLogger() {
  const lines: { level: string; event: string; fields: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (event: string, fields: Record<string, unknown> = {}) =>
      lines.push({ level, event, fields });
  const logger: Logger = { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
  return { lines, logger };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

function outboxDb() {
  const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
  const db = openDb(dir);
  return { dir, db, outbox: new AlertOutboxStore(db), commit: new GroupCommit(db) };
}

describe('outbox delivery', () => {
  const event: AlertEvent = { event: 'failure', job: 'j', run: null, time: 'now' };
  const opts = { ...DEFAULT_DELIVERY, timeoutMs: 1000, retryBaseMs: 20, retryMaxMs: 1000 };
  let env: ReturnType<typeof outboxDb>;
  afterEach(() => {
    env?.commit.flush();
    env?.db.close();
    if (env) rmSync(env.dir, { recursive: true, force: true });
  });

  const queue = (target: string, e: AlertEvent, max = 10) =>
    env.commit.write(() => env.outbox.add(target, JSON.stringify(e), Date.now(), max));

  it('retries with exponential backoff kept in the row, delivers in order and deletes what it delivered', async () => {
    env = outboxDb();
    const sent: string[] = [];
    const times: number[] = [];
    let calls = 0;
    const target: AlertTarget = {
      name: 'test',
      send: async (e) => {
        times.push(Date.now());
        if (++calls <= 2) throw new Error(`refused ${calls}`);
        sent.push(e.job);
      },
    };
    const { lines, logger } = recordingLogger();
    queue('test', event);
    queue('test', { ...event, job: 'second' });
    const s = new OutboxSender(target, { ...env, clock: { now: Date.now }, logger }, opts);
    // nothing is read while the batch that queued them is open
    s.start();
    expect(env.commit.pending).toBe(true);
    await new Promise((r) => setTimeout(r, 0));
    expect(calls).toBe(0);
    while (sent.length < 2) await new Promise((r) => setTimeout(r, 5));
    s.stop();
    expect(sent).toEqual(['j', 'second']);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(18);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(38);
    expect(lines.filter((l) => l.event === 'alert.retry').map((l) => l.fields.retryInMs)).toEqual([20, 40]);
    env.commit.flush();
    expect(env.outbox.lengths()).toEqual([]);
  });

  it('a failed attempt is written to the row, so a new sender waits out the backoff', async () => {
    env = outboxDb();
    queue('dead', event);
    env.commit.flush();
    const target: AlertTarget = {
      name: 'dead',
      send: async () => {
        throw new Error('ECONNREFUSED');
      },
    };
    const s = new OutboxSender(
      target,
      { ...env, clock: { now: Date.now }, logger: recordingLogger().logger },
      { ...opts, retryBaseMs: 60_000, retryMaxMs: 120_000 },
    );
    s.start();
    while (env.outbox.head('dead')?.attempts !== 1) await new Promise((r) => setTimeout(r, 5));
    s.stop();
    env.commit.flush();
    const row = env.outbox.head('dead')!;
    expect(row.notBefore).toBeGreaterThan(Date.now() + 50_000);
    expect(JSON.parse(row.body)).toEqual(event);
  });

  it('gives up after maxAttempts when that is set, and logs an error', async () => {
    env = outboxDb();
    let calls = 0;
    const target: AlertTarget = {
      name: 'dead',
      send: async () => {
        calls++;
        throw new Error('ECONNREFUSED');
      },
    };
    const { lines, logger } = recordingLogger();
    queue('dead', event);
    const s = new OutboxSender(
      target,
      { ...env, clock: { now: Date.now }, logger },
      { ...opts, maxAttempts: 3, retryBaseMs: 1 },
    );
    s.start();
    while (!lines.some((l) => l.event === 'alert.failed')) await new Promise((r) => setTimeout(r, 5));
    s.stop();
    expect(calls).toBe(3);
    expect(lines.at(-1)).toMatchObject({ level: 'error', event: 'alert.failed', fields: { attempt: 3 } });
  });

  it('keeps at most max rows per target, dropping the oldest', () => {
    env = outboxDb();
    const dropped = [0, 1, 2, 3, 4].flatMap((i) => queue('slow', { ...event, job: `j${i}` }, 2));
    expect(dropped.map((d) => (JSON.parse(d.body) as AlertEvent).job)).toEqual(['j0', 'j1', 'j2']);
    expect(env.outbox.lengths()).toEqual([{ target: 'slow', n: 2 }]);
    expect((JSON.parse(env.outbox.head('slow')!.body) as AlertEvent).job).toBe('j3');
  });
});

describe('Alerts: run ends become events in the batch that ended them', () => {
  let dir: string;
  let db: Db;
  afterEach(() => {
    db?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('stores the alert with the change, delivers only after the commit, and skips cancelled runs for recovery', async () => {
    dir = mkdtempSync(join(tmpdir(), 'alerts-'));
    db = openDb(dir);
    const commit = new GroupCommit(db);
    const outbox = new AlertOutboxStore(db);
    const got: AlertEvent[] = [];
    const target: AlertTarget = { name: 'mem', send: async (e) => void got.push(e) };
    const alerts = new Alerts(
      {
        commit,
        jobs: new JobStore(db),
        history: new RunHistory(db),
        outbox,
        clock: { now: () => T },
        logger: recordingLogger().logger,
      },
      { webhooks: [], alertmanagers: [], after: [], publicUrl: 'https://ci' },
      [target],
    );
    const events = new RunEvents({ commit, logger: recordingLogger().logger });
    events.beforeCommit(alerts.onBatch);
    const jobs = new JobStore(db);
    const runs = new RunStore(db);
    const { job } = jobs.upsert(
      JobSpecSchema.parse({ name: 'j', platforms: ['p'], script: 'true', schedule: null }),
      null,
      0,
    );
    const start = (): RunRow => {
      const r = insertRun({ runs, jobs }, job, { queuedAt: 1 });
      runs.assign(r, 'w', 2);
      runs.start(runs.get(r.id)!, 3);
      return runs.get(r.id)!;
    };
    const end = (row: RunRow, result: RunResult, t: number) => {
      const now = commit.write(() => runs.finish(row, result, t, t));
      events.emit({ type: 'ended', run: now, attempt: row, result, finishedAt: t, at: t });
    };
    end(start(), { kind: 'exited', code: 1 }, 10);
    commit.flush();
    expect(outbox.firing().map((f) => [f.job, f.platform])).toEqual([['j', 'p']]);
    while (got.length < 1) await new Promise((r) => setTimeout(r, 5));
    end(start(), { kind: 'cancelled', reason: 'x' }, 20);
    end(start(), { kind: 'exited', code: 0 }, 30);
    expect(got.map((e) => e.event)).toEqual(['failure']);
    // a crash now: the batch holding the recovery and its outbox row is rolled back together
    commit.flush();
    expect(outbox.firing()).toEqual([]);
    while (got.length < 2) await new Promise((r) => setTimeout(r, 5));
    expect(got.map((e) => [e.event, e.run?.number])).toEqual([
      ['failure', 1],
      ['recovery', 3],
    ]);
    // a success reported late (finished before the failure that fires): still resolves what fires
    const late = start();
    end(start(), { kind: 'exited', code: 2 }, 40);
    commit.flush();
    expect(outbox.firing()).toHaveLength(1);
    end(late, { kind: 'exited', code: 0 }, 5);
    commit.flush();
    expect(outbox.firing()).toEqual([]);
    while (got.length < 4) await new Promise((r) => setTimeout(r, 5));
    expect(got.slice(2).map((e) => [e.event, e.run?.number])).toEqual([
      ['failure', 5],
      ['recovery', 4],
    ]);
    alerts.stop();
    commit.flush();
  });
});
