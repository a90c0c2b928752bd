import { z } from 'zod';
import { GitSourceSchema, NameSchema, ParamsSchema, TemplateRefSchema, TimeSchema } from './common.ts';
import { RUN_STATES, RunResultSchema } from './run.ts';
import { RunInputViewSchema } from './inputs.ts';

/** What the server tells clients about a run. */
export const RunViewSchema = z.object({
  id: z.uuid(),
  job: z.string(),
  number: z.number().int(),
  platform: z.string(),
  state: z.enum(RUN_STATES),
  attempt: z.number().int(),
  maxAttempts: z.number().int(),
  params: ParamsSchema,
  trigger: z.enum(['manual', 'schedule', 'missed', 'push', 'after', 'rebuild', 'upload']),
  worker: z.string().nullable(),
  queuedAt: TimeSchema,
  startedAt: TimeSchema.nullable(),
  finishedAt: TimeSchema.nullable(),
  notBefore: TimeSchema.nullable(),
  result: RunResultSchema.nullable(),
  /** Why a queued run is not running yet; null once it runs. */
  waiting: z.string().nullable(),
  cancelReason: z.string().nullable(),
  script: z.string().optional(),
  /** With the script: the run's prepare step (as root, with network), if its job has one. */
  prepare: z.string().optional(),
  /** For a job with a source: the ref asked for and the commit it resolved to (null until started). */
  ref: z.string().nullable().default(null),
  commit: z.string().nullable().default(null),
  /** Files placed in `$BUILDER_INPUT` before the job, with where each came from. */
  inputs: z.array(RunInputViewSchema).default([]),
  /** For a run queued by `after:`: the run whose success queued it. */
  after: z.object({ job: z.string(), number: z.number().int() }).nullable().default(null),
  /** The number of the run of the same job this one rebuilds (execute --rebuild). */
  rebuildOf: z.number().int().nullable().default(null),
});
export type RunView = z.infer<typeof RunViewSchema>;

/**
 * Where a job's file is, recorded by `apply`: the repository (its origin URL) and commit when the file
 * is in a git checkout, else null; `modified` when the file differed from that commit; `url` the
 * forge's web page of the file when the client knows the forge.
 */
export const JobDefinitionSchema = z.object({
  repo: z.string().max(2048).nullable(),
  commit: z.string().max(64).nullable(),
  path: z.string().min(1).max(4096),
  modified: z.boolean().default(false),
  url: z
    .string()
    .max(8192)
    .regex(/^https:\/\/\S+$/, 'a definition URL must be https://')
    .optional(),
});
export type JobDefinition = z.infer<typeof JobDefinitionSchema>;

/** `repo@commit:path`, or the path alone outside git: how a definition reads without a link. */
export function definitionText(d: JobDefinition): string {
  const at = d.repo === null ? d.path : `${d.repo}@${d.commit ?? '?'}:${d.path}`;
  return d.modified ? `${at} (modified)` : at;
}

export const MissedPolicySchema = z.enum(['skip', 'once']);
export type MissedPolicy = z.infer<typeof MissedPolicySchema>;

export const JobViewSchema = z.object({
  name: NameSchema,
  platforms: z.array(NameSchema),
  schedule: z.string().nullable(),
  timezone: z.string(),
  missed: MissedPolicySchema,
  timeoutSec: z.number(),
  killGraceSec: z.number(),
  retries: z.number().int(),
  retryBackoffSec: z.number(),
  concurrency: z.number().int(),
  params: ParamsSchema,
  nextRunAt: TimeSchema.nullable(),
  /** The template the job's scripts were rendered from (name and variables); null for a plain script. */
  template: TemplateRefSchema.nullable(),
  /** The job's own alert webhooks (the server's global targets come on top). */
  alertWebhooks: z.array(z.string()).default([]),
  /** Names of the secrets the job's environment gets (never their values). */
  secrets: z.array(z.string()).default([]),
  /** The file the job was applied from (`builder-client apply`); null for a job made with `schedule`. */
  definition: JobDefinitionSchema.nullable().default(null),
  source: GitSourceSchema.nullable().default(null),
  /** The job whose successes queue a run of this one (`after:`); null: none. */
  after: z.string().nullable().default(null),
  /** With the job's details: its one script, or `scripts` (one per platform) for a templated job. */
  script: z.string().optional(),
  scripts: z.record(z.string(), z.string()).optional(),
  /** With the job's details: its prepare step, or one per platform (`prepares`); absent: none. */
  prepare: z.string().optional(),
  prepares: z.record(z.string(), z.string()).optional(),
  lastRun: RunViewSchema.nullable().optional(),
});
export type JobView = z.infer<typeof JobViewSchema>;

export const WorkerViewSchema = z.object({
  name: z.string(),
  platform: z.string(),
  labels: z.array(z.string()),
  capacity: z.number().int(),
  executor: z.string(),
  connected: z.boolean(),
  runs: z.array(z.uuid()),
  connectedAt: TimeSchema.nullable(),
  lastSeenAt: TimeSchema.nullable(),
});
export type WorkerView = z.infer<typeof WorkerViewSchema>;

export const PlatformViewSchema = z.object({
  platform: z.string(),
  dropped: z.boolean(),
  workers: z.number().int(),
  queued: z.number().int(),
  running: z.number().int(),
});
export type PlatformView = z.infer<typeof PlatformViewSchema>;

export const InfoViewSchema = z.object({
  version: z.string(),
  now: TimeSchema,
  jobs: z.number().int(),
  workers: z.array(WorkerViewSchema),
  platforms: z.array(PlatformViewSchema),
  queued: z.array(RunViewSchema),
  running: z.array(RunViewSchema),
  /** Attempts taken back since the server started from workers that did not hold them. */
  reclaimed: z.object({ assigned: z.number().int(), running: z.number().int() }).default({ assigned: 0, running: 0 }),
});
export type InfoView = z.infer<typeof InfoViewSchema>;

export const SecretViewSchema = z.object({
  name: z.string(),
  /** null: every job that asks for it may have it. */
  job: z.string().nullable(),
  updatedAt: TimeSchema,
});
export type SecretView = z.infer<typeof SecretViewSchema>;

/** A job's push hook as listed: never its secret. */
export const HookViewSchema = z.object({
  job: z.string(),
  /** null: the job's source ref. */
  branches: z.array(z.string()).nullable(),
  updatedAt: TimeSchema,
});
export type HookView = z.infer<typeof HookViewSchema>;
