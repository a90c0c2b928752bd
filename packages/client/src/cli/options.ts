import { InvalidArgumentError } from 'commander';

/** An integer option within [min, max]; commander turns the thrown error into exit 2. */
export function intOption(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return n;
  };
}

/** A number of seconds (fractions allowed) within [min, max]. */
export function secondsOption(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number of seconds from ${min} to ${max}`);
    }
    return n;
  };
}

/** Repeatable and comma-separated: `--platform a --platform b,c` → [a, b, c]. */
export function collectList(value: string, previous: string[] | undefined): string[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (items.length === 0) throw new InvalidArgumentError('expected a name');
  return [...(previous ?? []), ...items.filter((s) => !previous?.includes(s))];
}

/** Repeatable `--param K=V` into a record; later values win. */
export function collectParam(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected KEY=VALUE');
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

export const PERIODS = ['hourly', 'daily', 'weekly', 'never'] as const;
export type Period = (typeof PERIODS)[number];

/** robur's periods as cron presets; `never` means run only on demand. */
export function periodSchedule(period: Period): string | null {
  return period === 'never' ? null : `@${period}`;
}

/** `--cron` wins over `--period` (commander refuses both); neither: undefined. */
export function scheduleFrom(opts: { cron?: string; period?: Period }): string | null | undefined {
  if (opts.cron !== undefined) return opts.cron;
  if (opts.period !== undefined) return periodSchedule(opts.period);
  return undefined;
}

/** An ISO 8601 date-time (or date) as epoch ms. */
export function parseDateTime(value: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim()))
    return undefined;
  const ms = Date.parse(value.trim());
  return Number.isNaN(ms) ? undefined : ms;
}
