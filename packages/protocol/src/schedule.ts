import { CronExpressionParser } from 'cron-parser';
import { ErrorCode, ProtocolError } from './errors.ts';

const PRESETS = new Set(['@hourly', '@daily', '@weekly', '@monthly', '@yearly', '@annually', '@midnight']);

export function validateTimezone(tz: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new ProtocolError(
      ErrorCode.InvalidArgument,
      `unknown time zone "${tz}": use an IANA name such as Europe/Berlin or UTC`,
    );
  }
}

/** Check a schedule (cron expression or preset) and return it in canonical form. */
export function normalizeSchedule(schedule: string, tz: string): string {
  const s = schedule.trim().replace(/\s+/g, ' ');
  if (s.startsWith('@') && !PRESETS.has(s)) {
    throw new ProtocolError(
      ErrorCode.InvalidArgument,
      `unknown schedule preset "${s}": use ${[...PRESETS].join(', ')} or a cron expression`,
    );
  }
  const fields = s.split(' ').length;
  if (!s.startsWith('@') && (fields < 5 || fields > 6)) {
    throw new ProtocolError(
      ErrorCode.InvalidArgument,
      `invalid cron expression "${schedule}": expected 5 fields (minute hour day month weekday)`,
    );
  }
  try {
    CronExpressionParser.parse(s, { tz, currentDate: new Date(0), strict: false }).next();
  } catch (err) {
    throw new ProtocolError(
      ErrorCode.InvalidArgument,
      `invalid cron expression "${schedule}": ${(err as Error).message}`,
    );
  }
  return s;
}
