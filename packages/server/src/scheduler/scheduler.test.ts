import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobSpecSchema, ProtocolError } from '@builder/protocol';
import { silentLogger } from '../log.ts';
import { openDb, type Db } from '../store/db.ts';
import { JobStore } from '../store/jobs.ts';
import type { JobRow } from '../store/rows.ts';
import { nextAfter, normalizeSchedule, validateTimezone } from './cron.ts';
import { Scheduler } from './scheduler.ts';
import { removeTempDb, tempDb } from '../test-support/temp-db.ts';

const at = (iso: string) => new Date(iso).getTime();

describe('cron', () => {
  it('anchors to the schedule in the job time zone', () => {
    // 03:00 Berlin in winter is 02:00 UTC
    expect(new Date(nextAfter('0 3 * * *', 'Europe/Berlin', at('2026-01-10T12:00:00Z'))).toISOString()).toBe(
      '2026-01-11T02:00:00.000Z',
    );
    expect(new Date(nextAfter('@daily', 'UTC', at('2026-01-10T12:00:00Z'))).toISOString()).toBe(
      '2026-01-11T00:00:00.000Z',
    );
  });

  it('keeps local wall-clock time across DST changes', () => {
    // Berlin goes to summer time on 2026-03-29: 03:00 local is 01:00 UTC from then on
    const before = nextAfter('0 3 * * *', 'Europe/Berlin', at('2026-03-28T12:00:00Z'));
    const after = nextAfter('0 3 * * *', 'Europe/Berlin', before);
    expect(new Date(before).toISOString()).toBe('2026-03-29T01:00:00.000Z');
    expect(new Date(after).toISOString()).toBe('2026-03-30T01:00:00.000Z');
    // a slot inside the skipped hour (02:30) still fires once that day, not zero or twice
    const skipped = nextAfter('30 2 * * *', 'Europe/Berlin', at('2026-03-28T12:00:00Z'));
    expect(new Date(skipped).toISOString().slice(0, 10)).toBe('2026-03-29');
    expect(new Date(nextAfter('30 2 * * *', 'Europe/Berlin', skipped)).toISOString().slice(0, 10)).toBe('2026-03-30');
    // autumn: 2026-10-25 has 02:30 twice; the job runs once that day
    const autumn = nextAfter('30 2 * * *', 'Europe/Berlin', at('2026-10-24T12:00:00Z'));
    const following = nextAfter('30 2 * * *', 'Europe/Berlin', autumn);
    expect(new Date(following).getTime() - autumn).toBeGreaterThan(20 * 3600_000);
  });

  it('rejects bad expressions and zones with a message naming them', () => {
    expect(() => normalizeSchedule('61 * * * *', 'UTC')).toThrow(/invalid cron expression "61 \* \* \* \*"/);
    expect(() => normalizeSchedule('* *', 'UTC')).toThrow(/expected 5 fields/);
    expect(() => normalizeSchedule('@sometimes', 'UTC')).toThrow(/unknown schedule preset/);
    expect(() => validateTimezone('Mars/Olympus')).toThrow(ProtocolError);
    expect(normalizeSchedule('  0   3 * * * ', 'UTC')).toBe('0 3 * * *');
  });
});

describe('Scheduler', () => {
  let dir: string;
  let db: Db;
  let jobs: JobStore;
  let now: number;
  let fired: { job: string; trigger: string }[];
  let scheduler: Scheduler;

  const addJob = (
    name: string,
    schedule: string,
    extra: Partial<{ missed: 'skip' | 'once'; timezone: string }> = {},
  ): JobRow => {
    const spec = JobSpecSchema.parse({ name, platforms: ['debian-12'], script: 'true', schedule, ...extra });
    return jobs.upsert(spec, nextAfter(schedule, spec.timezone, now), now).job;
  };

  beforeEach(() => {
    ({ dir, db } = tempDb('builder-sched-'));
    jobs = new JobStore(db);
    now = at('2026-01-10T12:00:00Z');
    fired = [];
    scheduler = new Scheduler({
      jobs,
      clock: { now: () => now },
      logger: silentLogger,
      missedGraceMs: 60_000,
      fire: (job, trigger) => fired.push({ job: job.name, trigger }),
      write: (fn) => db.transaction(fn)(),
    });
  });
  afterEach(() => {
    scheduler.stop();
    removeTempDb(dir, db);
  });

  it('fires on time and moves to the next slot without drift', () => {
    addJob('hourly', '@hourly');
    now = at('2026-01-10T13:00:00.500Z');
    expect(scheduler.tick().fired).toEqual(['hourly']);
    // handled 40 s late: still on time, and the next slot is 15:00 sharp, not 15:00:40
    now = at('2026-01-10T14:00:40Z');
    expect(scheduler.tick().fired).toEqual(['hourly']);
    expect(jobs.get('hourly')!.nextRunAt).toBe(at('2026-01-10T15:00:00Z'));
    expect(fired.map((f) => f.trigger)).toEqual(['schedule', 'schedule']);
    expect(scheduler.tick().fired).toEqual([]);
  });

  it('runs missed slots once after downtime with the default policy', () => {
    addJob('nightly', '0 3 * * *', { timezone: 'Europe/Berlin' });
    // the server was down for three days
    now = at('2026-01-14T09:00:00Z');
    expect(scheduler.tick().fired).toEqual(['nightly']);
    expect(fired).toEqual([{ job: 'nightly', trigger: 'missed' }]);
    expect(new Date(jobs.get('nightly')!.nextRunAt!).toISOString()).toBe('2026-01-15T02:00:00.000Z');
  });

  it('skips missed slots with --missed skip', () => {
    addJob('nightly', '0 3 * * *', { missed: 'skip' });
    now = at('2026-01-14T09:00:00Z');
    expect(scheduler.tick()).toEqual({ fired: [], skipped: ['nightly'] });
    expect(fired).toEqual([]);
    expect(new Date(jobs.get('nightly')!.nextRunAt!).toISOString()).toBe('2026-01-15T03:00:00.000Z');
  });

  it('survives a restart: the next slot is read back from the database', () => {
    addJob('nightly', '0 3 * * *');
    db.close();
    db = openDb(dir);
    jobs = new JobStore(db);
    expect(new Date(jobs.get('nightly')!.nextRunAt!).toISOString()).toBe('2026-01-11T03:00:00.000Z');
  });
});
