import type {
  GitSource,
  JobDefinition,
  MissedPolicy,
  Params,
  RunResult,
  RunState,
  TemplateRef,
} from '@builder/protocol';

/** Rows as the store hands them out: parsed, camel-cased, typed. */
export interface JobRow {
  id: number;
  name: string;
  platforms: string[];
  /** The script every platform runs; '' when `scripts` has one per platform. */
  script: string;
  scripts: Record<string, string> | null;
  /** The prepare step every platform runs (root, network), or one per platform in `prepares`; null: none. */
  prepare: string | null;
  prepares: Record<string, string> | null;
  template: TemplateRef | null;
  alertWebhooks: string[];
  secrets: string[];
  definition: JobDefinition | null;
  /** The repository each run checks out; null: none. */
  source: GitSource | null;
  /** The job whose successes queue a run of this one; null: none. */
  after: string | null;
  schedule: string | null;
  timezone: string;
  missed: MissedPolicy;
  timeoutSec: number;
  killGraceSec: number;
  retries: number;
  retryBackoffSec: number;
  concurrency: number;
  params: Params;
  nextRunAt: number | null;
  nextNumber: number;
  deletedAt: number | null;
}

export interface RunRow {
  id: string;
  jobId: number;
  job: string;
  number: number;
  platform: string;
  script: string;
  /** The prepare step this run executes before its script; null: none. */
  prepare: string | null;
  params: Params;
  /** What queued it: a user (manual), the schedule (or a missed firing), a push hook, an `after:` chain, a rebuild, an upload. */
  trigger: 'manual' | 'schedule' | 'missed' | 'push' | 'after' | 'rebuild' | 'upload';
  state: RunState;
  attempt: number;
  maxAttempts: number;
  retryBackoffSec: number;
  timeoutSec: number;
  killGraceSec: number;
  priority: number;
  worker: string | null;
  queuedAt: number;
  notBefore: number | null;
  assignedAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  result: RunResult | null;
  cancelReason: string | null;
  logSeq: number;
  logBytes: number;
  /** Console bytes held back from the log because they may begin a secret (console/secret-mask.ts). */
  logCarry: Buffer | null;
  /** For a job with a source: the ref asked for, and the commit the worker resolved it to. */
  ref: string | null;
  commit: string | null;
  /** The run whose success queued this one (`after:`); null otherwise. */
  afterRun: string | null;
  /** The number of the run of this job it rebuilds (execute --rebuild); null: not a rebuild. */
  rebuildOf: number | null;
}

export interface RawJob {
  id: number;
  name: string;
  platforms: string;
  script: string;
  scripts: string | null;
  prepare: string | null;
  prepares: string | null;
  template: string | null;
  alert_webhooks: string;
  secrets: string;
  definition: string | null;
  source: string | null;
  after: string | null;
  schedule: string | null;
  timezone: string;
  missed: MissedPolicy;
  timeout_s: number;
  kill_grace_s: number;
  retries: number;
  retry_backoff_s: number;
  concurrency: number;
  params: string;
  next_run_at: number | null;
  next_number: number;
  deleted_at: number | null;
}

export interface RawRun {
  id: string;
  job_id: number;
  job: string;
  number: number;
  platform: string;
  script: string;
  prepare: string | null;
  params: string;
  trigger: 'manual' | 'schedule' | 'missed';
  trigger_kind: RunRow['trigger'] | null;
  state: RunState;
  attempt: number;
  max_attempts: number;
  retry_backoff_s: number;
  timeout_s: number;
  kill_grace_s: number;
  priority: number;
  worker: string | null;
  queued_at: number;
  not_before: number | null;
  assigned_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  result: string | null;
  cancel_reason: string | null;
  log_seq: number;
  log_bytes: number;
  log_carry: Buffer | null;
  ref: string | null;
  commit_sha: string | null;
  after_run: string | null;
  rebuild_of: number | null;
}

export function jobFromRaw(r: RawJob): JobRow {
  return {
    id: r.id,
    name: r.name,
    platforms: JSON.parse(r.platforms) as string[],
    script: r.script,
    scripts: r.scripts === null ? null : (JSON.parse(r.scripts) as Record<string, string>),
    prepare: r.prepare,
    prepares: r.prepares === null ? null : (JSON.parse(r.prepares) as Record<string, string>),
    template: r.template === null ? null : (JSON.parse(r.template) as TemplateRef),
    alertWebhooks: JSON.parse(r.alert_webhooks) as string[],
    secrets: JSON.parse(r.secrets) as string[],
    definition: r.definition === null ? null : (JSON.parse(r.definition) as JobDefinition),
    source: r.source === null ? null : (JSON.parse(r.source) as GitSource),
    after: r.after,
    schedule: r.schedule,
    timezone: r.timezone,
    missed: r.missed,
    timeoutSec: r.timeout_s,
    killGraceSec: r.kill_grace_s,
    retries: r.retries,
    retryBackoffSec: r.retry_backoff_s,
    concurrency: r.concurrency,
    params: JSON.parse(r.params) as Params,
    nextRunAt: r.next_run_at,
    nextNumber: r.next_number,
    deletedAt: r.deleted_at,
  };
}

/** The script a run of `job` on `platform` executes. */
export function scriptFor(job: JobRow, platform: string): string {
  if (job.scripts === null) return job.script;
  const script = job.scripts[platform];
  if (script === undefined) throw new Error(`job ${job.name} has no script for platform ${platform}`);
  return script;
}

/** The prepare step a run of `job` on `platform` executes first, or null. */
export function prepareFor(job: JobRow, platform: string): string | null {
  if (job.prepares === null) return job.prepare;
  return job.prepares[platform] ?? null;
}

export function runFromRaw(r: RawRun): RunRow {
  return {
    id: r.id,
    jobId: r.job_id,
    job: r.job,
    number: r.number,
    platform: r.platform,
    script: r.script,
    prepare: r.prepare,
    params: JSON.parse(r.params) as Params,
    trigger: r.trigger_kind ?? r.trigger,
    state: r.state,
    attempt: r.attempt,
    maxAttempts: r.max_attempts,
    retryBackoffSec: r.retry_backoff_s,
    timeoutSec: r.timeout_s,
    killGraceSec: r.kill_grace_s,
    priority: r.priority,
    worker: r.worker,
    queuedAt: r.queued_at,
    notBefore: r.not_before,
    assignedAt: r.assigned_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    result: r.result === null ? null : (JSON.parse(r.result) as RunResult),
    cancelReason: r.cancel_reason,
    logSeq: r.log_seq,
    logBytes: r.log_bytes,
    logCarry: r.log_carry,
    ref: r.ref,
    commit: r.commit_sha,
    afterRun: r.after_run,
    rebuildOf: r.rebuild_of,
  };
}
