import { CronExpressionParser } from 'cron-parser';
// checked by the client too (apply checks every job file before changing anything), so they live in protocol
export { normalizeSchedule, validateTimezone } from '@builder/protocol';

/** robur's periods, as cron presets. */
export const PERIODS: Readonly<Record<string, string | null>> = {
  hourly: '@hourly',
  daily: '@daily',
  weekly: '@weekly',
  never: null,
};

/**
 * The first time the schedule fires strictly after `after`. Anchored to the schedule itself, so
 * late handling never shifts later runs (no drift).
 */
export function nextAfter(schedule: string, tz: string, after: number): number {
  const it = CronExpressionParser.parse(schedule, { tz, currentDate: new Date(after) });
  return it.next().getTime();
}
