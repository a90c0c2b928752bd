import { NAME_PATTERN } from '@builder/protocol';
import type { SiteDeps } from './deps.ts';
import type { RunRow } from '../store/rows.ts';

const RUN_NUMBER = /^[1-9][0-9]{0,15}$/;

/** `/job/J/run/N/…` path segments (still percent-encoded) → the run, or undefined. */
export function runAt(ctx: SiteDeps, jobSegment: string, numberSegment: string): RunRow | undefined {
  let job: string;
  try {
    job = decodeURIComponent(jobSegment);
  } catch {
    return undefined; // malformed percent-encoding: no job has that name
  }
  if (!NAME_PATTERN.test(job) || !RUN_NUMBER.test(numberSegment)) return undefined;
  return ctx.runs.getByNumber(job, Number(numberSegment));
}
