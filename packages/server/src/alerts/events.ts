import { formatResult, type RunResult, type RunState } from '@builder/protocol';

/** What an alert is about. */
export type AlertEventName = 'failure' | 'recovery' | 'lost' | 'missed' | 'storage-full';

export interface AlertRun {
  id: string;
  number: number;
  platform: string;
  /** The run's state after this attempt: `queued` when a lost attempt is being retried. */
  state: RunState;
  /** Formatted result of the attempt: `exited 3`, `timeout`, `lost`, `error: …`. */
  result: string;
  attempt: number;
  url: string;
}

/** One event, as queued for every target. */
export interface AlertEvent {
  event: AlertEventName;
  job: string;
  /** Null for `missed` (the slot's run, if any, is created separately). */
  run: AlertRun | null;
  /** ISO time the event happened. */
  time: string;
  /** `missed` only: the slot that was missed, and what the job's policy did about it. */
  due?: string;
  policy?: 'once' | 'skip';
  /** `missed` only: the job's platforms. */
  platforms?: string[];
  /** `storage-full` only (its `job` is empty): what failed to write, and the room left in the data dir. */
  cause?: string;
  freeBytes?: number;
}

/** The terminal states that count as a failure. */
export const FAILED_STATES: ReadonlySet<RunState> = new Set<RunState>(['failed', 'timeout', 'error', 'lost']);

/** `${publicUrl}/job/JOB/run/NUMBER`. */
export function runUrl(publicUrl: string, job: string, number: number): string {
  return `${publicUrl.replace(/\/+$/, '')}/job/${encodeURIComponent(job)}/run/${number}`;
}

export interface EndedRun {
  id: string;
  job: string;
  number: number;
  platform: string;
  attempt: number;
}

/**
 * Which events an ended attempt raises. `previous` is the state of the job+platform's previous
 * finished run (cancelled runs skipped), undefined when there is none.
 */
export function eventsForEnd(
  run: EndedRun,
  state: RunState,
  result: RunResult,
  previous: RunState | undefined,
  publicUrl: string,
  time: number,
): AlertEvent[] {
  const names: AlertEventName[] = [];
  if (result.kind === 'lost') names.push('lost');
  if (FAILED_STATES.has(state)) names.push('failure');
  if (state === 'succeeded' && previous !== undefined && previous !== 'succeeded') names.push('recovery');
  const view: AlertRun = {
    id: run.id,
    number: run.number,
    platform: run.platform,
    state,
    result: formatResult(result),
    attempt: run.attempt,
    url: runUrl(publicUrl, run.job, run.number),
  };
  const iso = new Date(time).toISOString();
  return names.map((event) => ({ event, job: run.job, run: view, time: iso }));
}
