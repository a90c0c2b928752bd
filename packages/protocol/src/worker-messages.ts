import { z } from 'zod';
import {
  AttemptSchema,
  CommitShaSchema,
  GitSourceSchema,
  NameSchema,
  ParamsSchema,
  RunIdSchema,
  SecretNameSchema,
  SeqSchema,
  TimeSchema,
} from './common.ts';
import { EnvironmentSchema } from './environment.ts';
import { LIMITS } from './limits.ts';
import { INPUT_LIMITS, InputFileSchema } from './inputs.ts';
import { RunResultSchema } from './run.ts';

/** A run the worker is still executing (or holds an unacknowledged result for) when it says hello. */
export const HeldRunSchema = z.object({
  runId: RunIdSchema,
  attempt: AttemptSchema,
  /** Highest output sequence number the worker produced so far. */
  lastSeq: SeqSchema,
  /** The process has ended and the worker holds a result not yet acknowledged. */
  finished: z.boolean(),
});
export type HeldRun = z.infer<typeof HeldRunSchema>;

export const WorkerInfoSchema = z.object({
  name: NameSchema,
  platform: NameSchema,
  labels: z.array(NameSchema).max(64),
  capacity: z.number().int().min(1).max(LIMITS.maxRunningPerWorker),
  executor: z.string().min(1).max(32),
  running: z.array(HeldRunSchema).max(LIMITS.maxRunningPerWorker),
});
export type WorkerInfo = z.infer<typeof WorkerInfoSchema>;

export const StreamSchema = z.enum(['out', 'err', 'system']);
export type Stream = z.infer<typeof StreamSchema>;

// ---- worker → server ----

/**
 * Liveness, and what the worker really holds: the server reconciles its own view with it (an
 * attempt it believes assigned here that the worker, having seen its assignment, does not list is
 * reclaimed; one the worker lists that it should not run is cancelled), and renews the leases of
 * the listed attempts only. Both fields absent: a worker from before reconciliation.
 */
export const HeartbeatSchema = z.object({
  type: z.literal('heartbeat'),
  running: z
    .array(z.object({ runId: RunIdSchema, attempt: AttemptSchema }))
    .max(LIMITS.maxRunningPerWorker)
    .optional(),
  /** How many `assign` messages the worker received on this connection (crossing messages). */
  assignsSeen: z.number().int().min(0).optional(),
});
export type Heartbeat = z.infer<typeof HeartbeatSchema>;

export const StartedSchema = z.object({
  type: z.literal('started'),
  runId: RunIdSchema,
  attempt: AttemptSchema,
  startedAt: TimeSchema,
  /** The commit the job's source was checked out at, for a job with a source. */
  commit: CommitShaSchema.optional(),
  /** Where it runs (worker, executor, base and its packages, kernel); absent from older workers. */
  environment: EnvironmentSchema.optional(),
});

/**
 * The header of a console chunk. Output does not travel as JSON: it is a binary frame (header,
 * then the raw bytes of the chunk), see output-frame.ts.
 */
export const OutputHeaderSchema = z.object({
  type: z.literal('output'),
  runId: RunIdSchema,
  attempt: AttemptSchema,
  /** Per attempt, starting at 1, without gaps. */
  seq: z.number().int().min(1),
  ts: TimeSchema,
  stream: StreamSchema,
});
export type OutputHeader = z.infer<typeof OutputHeaderSchema>;

/**
 * The job's own Markdown for its run page. The worker cuts it at LIMITS.maxSummaryBytes (on a
 * character boundary) and says so with `truncated`; the server renders it, never as raw HTML.
 */
export const RunSummarySchema = z.object({
  markdown: z.string().max(LIMITS.maxSummaryBytes),
  truncated: z.boolean(),
});
export type RunSummary = z.infer<typeof RunSummarySchema>;

/**
 * CPU time (user + system, all of the job's processes) and peak memory of an attempt. `source`
 * says how it was measured: `cgroup` (the run's own cgroup: exact), `proc` (the job's process
 * tree sampled from /proc: what ran between samples may be missed) or `cgroup+proc` (memory from
 * the cgroup, CPU sampled: a cgroup v1 host without cpuacct next to cpu).
 */
export const RunUsageSchema = z.object({
  cpuMs: z.number().nonnegative().max(1e15),
  peakMemoryBytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).nullable(),
  source: z.enum(['cgroup', 'proc', 'cgroup+proc']),
});
export type RunUsage = z.infer<typeof RunUsageSchema>;

export const FinishedSchema = z.object({
  type: z.literal('finished'),
  runId: RunIdSchema,
  attempt: AttemptSchema,
  /** Sequence number of the last output chunk of this attempt (0: none). */
  lastSeq: SeqSchema,
  result: RunResultSchema,
  finishedAt: TimeSchema,
  /** What the job wrote to `$BUILDER_SUMMARY` (Markdown); absent: nothing (or an older worker). */
  summary: RunSummarySchema.optional(),
  /** What the attempt cost; absent when the worker could not measure it (or is older). */
  usage: RunUsageSchema.optional(),
});
export type Finished = z.infer<typeof FinishedSchema>;

/** The worker cannot take an assigned run (full, shutting down); the server re-queues it. */
export const RejectedSchema = z.object({
  type: z.literal('rejected'),
  runId: RunIdSchema,
  attempt: AttemptSchema,
  reason: z.string().max(1024),
});

/** The JSON (text frame) messages of a worker; console output is a binary frame (output-frame.ts). */
export const WorkerToServerSchema = z.discriminatedUnion('type', [
  HeartbeatSchema,
  StartedSchema,
  FinishedSchema,
  RejectedSchema,
]);
export type WorkerToServer = z.infer<typeof WorkerToServerSchema>;

// ---- server → worker ----

export const AssignmentSchema = z.object({
  runId: RunIdSchema,
  attempt: AttemptSchema,
  job: NameSchema,
  number: z.number().int().min(1),
  platform: NameSchema,
  script: z.string().max(LIMITS.maxScriptBytes),
  /** Run first, in the same sandbox, as root with network (the job's prepare step); then the script. */
  prepare: z.string().max(LIMITS.maxScriptBytes).optional(),
  params: ParamsSchema,
  timeoutSec: z.number().positive(),
  killGraceSec: z.number().nonnegative(),
  /**
   * Fresh for each attempt: the artifact transfer of this attempt must present it (with the
   * holding worker's token), so no other token holder can put files under this run.
   */
  attemptSecret: z.string().regex(/^[0-9a-f]{64}$/),
  /** The job's secrets by name: only for the job's environment, never written to disk or logged. */
  secrets: z.record(SecretNameSchema, z.string().max(LIMITS.maxSecretBytes)).default({}),
  /** Secrets the job asks for that the server does not have: the worker ends the attempt with an error. */
  missingSecrets: z.array(SecretNameSchema).max(LIMITS.maxSecretsPerJob).default([]),
  /** The repository to check out before the job, with the ref this run asked for. */
  source: GitSourceSchema.optional(),
  /** The server's public URL and this run's page, for the job's environment. */
  serverUrl: z.string().max(2048).optional(),
  runUrl: z.string().max(2048).optional(),
  /** Files the worker fetches (GET /inputs/RUN/ATTEMPT/NAME) into `$BUILDER_INPUT` before the job. */
  inputs: z.array(InputFileSchema).max(INPUT_LIMITS.maxInputs).default([]),
});
export type Assignment = z.infer<typeof AssignmentSchema>;

export const AssignSchema = z.object({ type: z.literal('assign'), run: AssignmentSchema });

/** Output up to and including `seq` of this attempt is durable on the server. */
export const AckSchema = z.object({
  type: z.literal('ack'),
  runId: RunIdSchema,
  attempt: AttemptSchema,
  seq: SeqSchema,
});

/** The result is recorded; the worker may forget the run. */
export const FinishedAckSchema = z.object({
  type: z.literal('finished-ack'),
  runId: RunIdSchema,
  attempt: AttemptSchema,
});

/** Stop this attempt: cancelled by a user, or fenced because it is stale. */
export const CancelSchema = z.object({
  type: z.literal('cancel'),
  runId: RunIdSchema,
  attempt: AttemptSchema,
  reason: z.string().max(1024),
});

/** The server is missing output: send again from `fromSeq`. */
export const ResendSchema = z.object({
  type: z.literal('resend'),
  runId: RunIdSchema,
  attempt: AttemptSchema,
  fromSeq: z.number().int().min(1),
});

export const ServerToWorkerSchema = z.discriminatedUnion('type', [
  AssignSchema,
  AckSchema,
  FinishedAckSchema,
  CancelSchema,
  ResendSchema,
]);
export type ServerToWorker = z.infer<typeof ServerToWorkerSchema>;
