import type { Assignment } from '@builder/protocol';
import { posix } from 'node:path';
import { SUMMARY_FILE } from '../summary.ts';
import type { RunSource } from './types.ts';

/** The worker's own variables that match `pattern` (everything else, BUILDER_TOKEN above all, stays out). */
export function passedEnv(env: NodeJS.ProcessEnv, pattern: RegExp): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && pattern.test(k)) out[k] = v;
  return out;
}

/**
 * What every job sees, whatever the sandbox: its parameters, then the BUILDER_* variables (which a
 * parameter cannot override). `output`, the source's and the `input` dir are dirs as the job sees them.
 */
export function jobVariables(
  job: Assignment,
  platform: string,
  output: string,
  source?: { run: RunSource; dir: string },
  input?: string,
): Record<string, string> {
  return {
    ...job.params,
    BUILDER_JOB: job.job,
    BUILDER_RUN: String(job.number),
    BUILDER_RUN_ID: job.runId,
    BUILDER_ATTEMPT: String(job.attempt),
    BUILDER_PLATFORM: platform,
    BUILDER_OUTPUT: output,
    // Markdown for the top of the run page (taken out of the output dir before the artifacts go)
    BUILDER_SUMMARY: posix.join(output, SUMMARY_FILE),
    ...(job.serverUrl !== undefined && { BUILDER_URL: job.serverUrl }),
    ...(job.runUrl !== undefined && { BUILDER_RUN_URL: job.runUrl }),
    ...(source && { BUILDER_SOURCE: source.dir, BUILDER_REF: source.run.ref, BUILDER_COMMIT: source.run.commit }),
    ...(input !== undefined && { BUILDER_INPUT: input }),
  };
}

/**
 * The secrets the job asked for, as environment variables. Executors hand them to the job's
 * process environment only: never into a file, an argument list or a log line.
 */
export function secretVariables(job: Assignment): Record<string, string> {
  const out: Record<string, string> = {};
  // like parameters, a secret cannot stand in for one of builder's own variables
  for (const [k, v] of Object.entries(job.secrets)) if (!k.startsWith('BUILDER_')) out[k] = v;
  return out;
}

/** `nightly-7`: the job's name made a valid host name label, and the run's number. */
export function sandboxHostname(job: Assignment): string {
  const label =
    job.job
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'job';
  return `${label.slice(0, 50)}-${job.number}`;
}
