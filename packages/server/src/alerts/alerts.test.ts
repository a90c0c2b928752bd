import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
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
import { TargetQueue } from './queue.ts';
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
    const [fire] = alertmanagerAlerts(failure!, 'https://ci');
    const [resolve] = alertmanagerAlerts(recovery!, 'https://ci');
    expect(fire).toMatchObject({
      labels: { alertname: 'BuilderRunFailed', job: 'nightly', platform: 'debian-12', severity: 'critical' },
      generatorURL: 'https://ci/job/nightly/run/7',
      startsAt: '2026-01-02T03:04:05.000Z',
    });
    expect(fire!.endsAt).toBeUndefined();
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
      labels: { alertname: 'BuilderScheduleMissed', job: 'nightly', platform: 'a,b', severity: 'warning' },
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

describe('delivery queue', () => {
  const event: AlertEvent = { event: 'failure', job: 'j', run: null, time: 'now' };

  it('retries with exponential backoff and delivers in order', async () => {
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
    const q = new TargetQueue(target, { timeoutMs: 1000, maxAttempts: 5, retryBaseMs: 20, maxQueued: 10 }, logger);
    q.push(event);
    q.push({ ...event, job: 'second' });
    while (q.backlog > 0) await new Promise((r) => setTimeout(r, 5));
    expect(sent).toEqual(['j', 'second']);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(18);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(38);
    expect(lines.filter((l) => l.event === 'alert.retry').map((l) => l.fields.retryInMs)).toEqual([20, 40]);
    expect(q.delivered).toBe(2);
  });

  it('gives up after maxAttempts and logs an error', async () => {
    let calls = 0;
    const target: AlertTarget = {
      name: 'dead',
      send: async () => {
        calls++;
        throw new Error('ECONNREFUSED');
      },
    };
    const { lines, logger } = recordingLogger();
    const q = new TargetQueue(target, { timeoutMs: 1000, maxAttempts: 3, retryBaseMs: 1, maxQueued: 10 }, logger);
    q.push(event);
    while (q.backlog > 0) await new Promise((r) => setTimeout(r, 5));
    expect(calls).toBe(3);
    expect(q.failed).toBe(1);
    expect(lines.at(-1)).toMatchObject({ level: 'error', event: 'alert.failed', fields: { attempt: 3 } });
  });

  it('drops the oldest event when the queue is full, and push never blocks', async () => {
    const target: AlertTarget = { name: 'slow', send: () => new Promise(() => undefined) };
    const { lines, logger } = recordingLogger();
    const q = new TargetQueue(target, { timeoutMs: 1000, maxAttempts: 1, retryBaseMs: 1, maxQueued: 2 }, logger);
    for (let i = 0; i < 5; i++) q.push({ ...event, job: `j${i}` });
    await flush();
    expect(q.backlog).toBe(3); // one in flight, two waiting
    expect(lines.filter((l) => l.event === 'alert.dropped')).toHaveLength(2);
    q.stop();
  });
});

describe('Alerts: run ends become events after the commit', () => {
  let dir: string;
  let db: Db;
  afterEach(() => {
    db?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('queues nothing before the batch is committed, and skips cancelled runs for recovery', async () => {
    dir = mkdtempSync(join(tmpdir(), 'alerts-'));
    db = openDb(dir);
    const commit = new GroupCommit(db);
    const got: AlertEvent[] = [];
    const target: AlertTarget = { name: 'mem', send: async (e) => void got.push(e) };
    const alerts = new Alerts(
      {
        commit,
        jobs: new JobStore(db),
        history: new RunHistory(db),
        clock: { now: () => T },
        logger: recordingLogger().logger,
      },
      { webhooks: [], alertmanagers: [], after: [], publicUrl: 'https://ci' },
      [target],
    );
    const events = new RunEvents({ commit, logger: recordingLogger().logger });
    events.subscribe(alerts.onRunEvent);
    const jobs = new JobStore(db);
    const runs = new RunStore(db);
    const { job } = jobs.upsert(
      JobSpecSchema.parse({ name: 'j', platforms: ['p'], script: 'true', schedule: null }),
      null,
      0,
    );
    const start = (): RunRow => {
      const r = runs.insert({
        jobId: job.id,
        number: jobs.allocateNumber(job.id),
        platform: 'p',
        script: 'true',
        params: {},
        trigger: 'manual',
        maxAttempts: 1,
        retryBackoffSec: 0,
        timeoutSec: 60,
        killGraceSec: 1,
        priority: 0,
        queuedAt: 1,
      });
      runs.assign(r, 'w', 2);
      runs.start(runs.get(r.id)!, 3);
      return runs.get(r.id)!;
    };
    const a = start();
    runs.finish(a, { kind: 'exited', code: 1 }, 10, 10);
    const b = start();
    runs.finish(b, { kind: 'cancelled', reason: 'x' }, 20, 20);
    const row = start();
    const result = { kind: 'exited', code: 0 } as const;
    const now = commit.write(() => runs.finish(row, result, 30, 30));
    events.emit({ type: 'ended', run: now, attempt: row, result, finishedAt: 30, at: 30 });
    expect(got).toEqual([]);
    await new Promise((r) => setImmediate(r));
    await flush();
    expect(got.map((e) => [e.event, e.run?.number])).toEqual([['recovery', 3]]);
    alerts.stop();
  });
});
