import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { JobStore } from '../store/jobs.ts';
import type { JobRow } from '../store/rows.ts';
import { nextAfter } from './cron.ts';

export interface SchedulerDeps {
  jobs: JobStore;
  clock: Clock;
  logger: Logger;
  /** How late a firing may be handled and still count as on time rather than missed. */
  missedGraceMs: number;
  /** Create the runs of one firing; the caller decides platforms, coalescing and commit. */
  fire(job: JobRow, trigger: 'schedule' | 'missed'): void;
  /** Run `fn` as one atomic, group-committed change. */
  write<T>(fn: () => T): T;
  /** A slot was missed (alerting); called inside the slot's write. */
  missed?(job: JobRow, due: number, policy: 'once' | 'skip'): void;
}

/**
 * Cron scheduler. Each job stores its next firing time; `tick` fires everything due and moves
 * each job to its next slot after *now* (computed from the schedule, never from when a run ended).
 * Firings missed while the server was down collapse to one run (`once`) or none (`skip`).
 */
export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;

  constructor(private readonly deps: SchedulerDeps) {}

  start(): void {
    this.stopped = false;
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Fire all due jobs; returns the names fired, for tests. */
  tick(): { fired: string[]; skipped: string[] } {
    const { jobs, clock, logger, missedGraceMs } = this.deps;
    const now = clock.now();
    const fired: string[] = [];
    const skipped: string[] = [];
    for (const job of jobs.dueAt(now)) {
      if (job.nextRunAt === null) continue;
      const late = now - job.nextRunAt;
      // a job without a schedule can still have a one-off time set by `reschedule NAME NEXT`
      const next = job.schedule === null ? null : nextAfter(job.schedule, job.timezone, now);
      this.deps.write(() => {
        if (late <= missedGraceMs) {
          this.deps.fire(job, 'schedule');
          fired.push(job.name);
        } else if (job.missed === 'once') {
          logger.info('schedule.missed', {
            job: job.name,
            due: new Date(job.nextRunAt!).toISOString(),
            policy: 'once',
          });
          this.deps.fire(job, 'missed');
          this.deps.missed?.(job, job.nextRunAt!, 'once');
          fired.push(job.name);
        } else {
          logger.info('schedule.missed', {
            job: job.name,
            due: new Date(job.nextRunAt!).toISOString(),
            policy: 'skip',
          });
          this.deps.missed?.(job, job.nextRunAt!, 'skip');
          skipped.push(job.name);
        }
        jobs.setNextRunAt(job.id, next, now);
      });
    }
    this.arm();
    return { fired, skipped };
  }

  /** Re-arm after a job's schedule changed. */
  reschedule(): void {
    this.arm();
  }

  private arm(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const next = this.deps.jobs.earliestNextRun();
    if (next === null) {
      this.timer = undefined;
      return;
    }
    // cap the wait: timers drift and the clock may be changed under us
    const delay = Math.max(0, Math.min(next - this.deps.clock.now(), 60_000));
    this.timer = setTimeout(() => this.tick(), delay);
    this.timer.unref();
  }
}
