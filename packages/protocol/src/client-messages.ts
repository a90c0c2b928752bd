import { z } from 'zod';
import {
  GitRefSchema,
  GitSourceSchema,
  NameSchema,
  ParamsSchema,
  SecretNameSchema,
  TemplateRefSchema,
  TimeSchema,
} from './common.ts';
import { ArtifactFileSchema } from './artifacts.ts';
import { ErrorCode } from './errors.ts';
import { LIMITS } from './limits.ts';
import { INPUT_LIMITS, InputFileSchema, InputFromSchema } from './inputs.ts';
import { RUN_STATES } from './run.ts';
import { RepoSpecSchema, RepoViewSchema } from './repos.ts';
import {
  HookViewSchema,
  InfoViewSchema,
  JobDefinitionSchema,
  JobViewSchema,
  MissedPolicySchema,
  RunViewSchema,
  SecretViewSchema,
  WorkerViewSchema,
} from './views.ts';

/** A run named by UUID, `JOB/NUMBER` or `JOB#NUMBER`. */
export const RunRefSchema = z.string().min(1).max(256);

const PlatformsSchema = z.array(NameSchema).min(1).max(64);

const AlertUrlSchema = z
  .string()
  .max(2048)
  .regex(/^https?:\/\/\S+$/, 'an alert webhook must be an http:// or https:// URL');

const ScriptSchema = z.string().min(1).max(LIMITS.maxScriptBytes);

/** Where a job's sources come from: a git repository and the branch, tag or commit to build. */

export const JobSpecSchema = z
  .object({
    name: NameSchema,
    platforms: PlatformsSchema,
    /** The one script every platform runs; or else `scripts`. */
    script: ScriptSchema.optional(),
    /** One script per platform (a rendered template): exactly the job's platforms as keys. */
    scripts: z.record(NameSchema, ScriptSchema).optional(),
    /**
     * A step before the script, in the same sandbox, as root with network (build dependencies);
     * the script then runs as the sandbox's unprivileged user without network. Or `prepares`.
     */
    prepare: ScriptSchema.optional(),
    /** One prepare step per platform (a template's `PLATFORM.prepare.sh`): keys among the job's platforms. */
    prepares: z.record(NameSchema, ScriptSchema).optional(),
    /** The template `scripts` were rendered from, for display; null for a plain script. */
    template: TemplateRefSchema.nullable().default(null),
    /** A cron expression (5 or 6 fields) or a preset such as `@daily`; null: only run on demand. */
    schedule: z.string().max(256).nullable(),
    timezone: z.string().max(64).default('UTC'),
    missed: MissedPolicySchema.default('once'),
    timeoutSec: z
      .number()
      .positive()
      .max(7 * 24 * 3600)
      .default(3600),
    killGraceSec: z.number().nonnegative().max(3600).default(10),
    retries: z.number().int().min(0).max(100).default(0),
    retryBackoffSec: z
      .number()
      .nonnegative()
      .max(24 * 3600)
      .default(10),
    concurrency: z.number().int().min(1).max(1000).default(1),
    params: ParamsSchema.default({}),
    /** This job's own alert webhooks, on top of the server's global targets. */
    alertWebhooks: z.array(AlertUrlSchema).max(8).default([]),
    /** Secrets (by name) the job's environment gets; values are set with `secret set`, never here. */
    secrets: z.array(SecretNameSchema).max(LIMITS.maxSecretsPerJob).default([]),
    /** A git repository each run checks out before the job (`$BUILDER_SOURCE`). */
    source: GitSourceSchema.optional(),
    /** The file this spec came from (`apply`); null from `schedule`, which makes it a hand-made job again. */
    definition: JobDefinitionSchema.nullable().default(null),
    /** Run after each success of this job on a platform, with that run's artifacts as inputs; null: never. */
    after: NameSchema.nullable().default(null),
  })
  .superRefine((spec, ctx) => {
    if ((spec.script === undefined) === (spec.scripts === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'give either script or scripts (one per platform), not both or neither',
      });
      return;
    }
    const platforms = new Set(spec.platforms);
    if (spec.prepare !== undefined && spec.prepares !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['prepares'], message: 'give either prepare or prepares, not both' });
    }
    for (const key of Object.keys(spec.prepares ?? {})) {
      if (!platforms.has(key)) {
        ctx.addIssue({ code: 'custom', path: ['prepares', key], message: `${key} is not one of the job's platforms` });
      }
    }
    if (spec.scripts === undefined) return;
    for (const key of Object.keys(spec.scripts)) {
      if (!platforms.has(key)) {
        ctx.addIssue({ code: 'custom', path: ['scripts', key], message: `${key} is not one of the job's platforms` });
      }
    }
    for (const p of platforms) {
      if (!Object.hasOwn(spec.scripts, p)) {
        ctx.addIssue({ code: 'custom', path: ['scripts'], message: `no script for platform ${p}` });
      }
    }
  });
export type JobSpec = z.infer<typeof JobSpecSchema>;
export type JobSpecInput = z.input<typeof JobSpecSchema>;

/** Each method with its params and its result, in one place so both ends agree. */
export const Methods = {
  schedule: { params: JobSpecSchema, result: z.object({ job: JobViewSchema, created: z.boolean() }) },
  unschedule: {
    params: z.object({ name: NameSchema }),
    result: z.object({ name: z.string(), cancelled: z.number().int() }),
  },
  reschedule: {
    params: z.object({
      name: NameSchema,
      next: TimeSchema.optional(),
      schedule: z.string().max(256).nullable().optional(),
      timezone: z.string().max(64).optional(),
    }),
    result: JobViewSchema,
  },
  execute: {
    params: z.object({
      name: NameSchema,
      platforms: PlatformsSchema.optional(),
      params: ParamsSchema.default({}),
      next: z.boolean().default(false),
      /** Another ref of the job's source for this run (branch, tag or SHA). */
      ref: GitRefSchema.optional(),
      /** Files sent with `PUT /inputs` first (the server refuses a hash it does not hold). */
      inputs: z.array(InputFileSchema).max(INPUT_LIMITS.maxInputs).default([]),
      /** Other runs' artifacts, each resolved for every platform the execution queues. */
      inputsFrom: z.array(InputFromSchema).max(INPUT_LIMITS.maxInputs).default([]),
      /** Run the job's run N again: its commit, script and parameters, preferably on another worker. */
      rebuild: z.number().int().min(1).optional(),
    }),
    result: z.object({ runs: z.array(RunViewSchema) }),
  },
  cancel: {
    params: z.object({ run: RunRefSchema, reason: z.string().max(1024).optional() }),
    result: RunViewSchema,
  },
  info: { params: z.object({}), result: InfoViewSchema },
  job: {
    params: z.object({ name: NameSchema }),
    result: z.object({ job: JobViewSchema, runs: z.array(RunViewSchema) }),
  },
  jobs: { params: z.object({}), result: z.array(JobViewSchema) },
  runs: {
    params: z.object({
      job: NameSchema.optional(),
      state: z.enum(RUN_STATES).optional(),
      platform: NameSchema.optional(),
      limit: z.number().int().min(1).max(1000).default(20),
    }),
    result: z.array(RunViewSchema),
  },
  run: { params: z.object({ run: RunRefSchema }), result: RunViewSchema },
  latest: {
    params: z.object({
      job: NameSchema.optional(),
      platform: NameSchema.optional(),
      params: ParamsSchema.optional(),
    }),
    result: RunViewSchema.nullable(),
  },
  workers: { params: z.object({}), result: z.array(WorkerViewSchema) },
  dropPlatform: {
    params: z.object({ platform: NameSchema }),
    result: z.object({ platform: z.string(), changed: z.boolean() }),
  },
  undropPlatform: {
    params: z.object({ platform: NameSchema }),
    result: z.object({ platform: z.string(), changed: z.boolean() }),
  },
  /**
   * Subscribe to a run: state changes, and the console (replayed from the start, then live) when
   * `console` is true. Ends with an `end` event once the run is finished and its console sent.
   */
  observe: {
    params: z.object({ run: RunRefSchema, console: z.boolean().default(true) }),
    result: z.object({ sub: z.number().int(), run: RunViewSchema }),
  },
  unobserve: { params: z.object({ sub: z.number().int() }), result: z.object({}) },
  /** A run's artifacts; download each at `/job/J/run/N/artifacts/PATH`. */
  artifacts: {
    params: z.object({ run: RunRefSchema }),
    result: z.object({ run: RunViewSchema, files: z.array(ArtifactFileSchema) }),
  },
  /** Store a secret for every job (no `job`) or one job; admin only, like everything not read. */
  secretSet: {
    params: z.object({
      name: SecretNameSchema,
      job: NameSchema.optional(),
      value: z.string().min(1).max(LIMITS.maxSecretBytes),
    }),
    result: z.object({ name: z.string(), job: z.string().nullable(), created: z.boolean() }),
  },
  /** Names, scopes and times only: no answer ever carries a secret's value. */
  secretList: { params: z.object({}), result: z.array(SecretViewSchema) },
  secretRemove: {
    params: z.object({ name: SecretNameSchema, job: NameSchema.optional() }),
    result: z.object({ name: z.string(), job: z.string().nullable() }),
  },
  /** Every run of a commit (full SHA or a prefix of at least 4), newest first; optionally of one job. */
  commitRuns: {
    params: z.object({
      commit: z.string().regex(/^[0-9a-f]{4,64}$/, 'a commit SHA or a prefix of one (4 or more lowercase hex digits)'),
      job: NameSchema.optional(),
      limit: z.number().int().min(1).max(1000).default(100),
    }),
    result: z.array(RunViewSchema),
  },
  /**
   * Give a job a push hook (`POST /hooks/JOB`): the secret forges sign with (made by the server
   * when not given; then returned this once) and the branches pushes to which queue runs.
   */
  hookSet: {
    params: z.object({
      job: NameSchema,
      secret: z.string().min(16, 'a hook secret has at least 16 characters').max(256).optional(),
      /** Branch names or patterns with `*`; absent: the job's source ref. */
      branches: z.array(GitRefSchema).min(1).max(64).optional(),
    }),
    result: z.object({
      job: z.string(),
      branches: z.array(z.string()).nullable(),
      created: z.boolean(),
      secret: z.string().nullable(),
    }),
  },
  hookList: { params: z.object({}), result: z.array(HookViewSchema) },
  hookRemove: { params: z.object({ job: NameSchema }), result: z.object({ job: z.string() }) },
  /** Create or replace a package repository; resolves once its first index is published. */
  repoCreate: { params: RepoSpecSchema, result: z.object({ repo: RepoViewSchema, created: z.boolean() }) },
  repoList: { params: z.object({}), result: z.array(RepoViewSchema) },
  repoShow: { params: z.object({ name: NameSchema }), result: RepoViewSchema },
  repoRemove: { params: z.object({ name: NameSchema }), result: z.object({ name: z.string() }) },
} as const;
export type MethodName = keyof typeof Methods;
export type MethodParams<M extends MethodName> = z.infer<(typeof Methods)[M]['params']>;
export type MethodParamsInput<M extends MethodName> = z.input<(typeof Methods)[M]['params']>;
export type MethodResult<M extends MethodName> = z.infer<(typeof Methods)[M]['result']>;

/** Methods a `read` token may call; everything else needs `admin`. */
export const READ_METHODS: ReadonlySet<MethodName> = new Set<MethodName>([
  'info',
  'job',
  'jobs',
  'runs',
  'run',
  'latest',
  'artifacts',
  'workers',
  'observe',
  'unobserve',
  'commitRuns',
  'repoList',
  'repoShow',
]);

export const METHOD_NAMES = Object.keys(Methods) as [MethodName, ...MethodName[]];

// ---- client → server ----

/** The envelope; params are validated against the method's own schema afterwards. */
export const RequestSchema = z.object({
  type: z.literal('request'),
  id: z.number().int().min(0),
  method: z.enum(METHOD_NAMES),
  params: z.unknown(),
});
export type Request = z.infer<typeof RequestSchema>;

export const ClientToServerSchema = RequestSchema;

// ---- server → client ----

export const ErrorBodySchema = z.object({
  code: z.enum(Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]]),
  message: z.string(),
});

export const ResponseSchema = z.discriminatedUnion('ok', [
  z.object({ type: z.literal('response'), id: z.number().int(), ok: z.literal(true), result: z.unknown() }),
  z.object({ type: z.literal('response'), id: z.number().int(), ok: z.literal(false), error: ErrorBodySchema }),
]);
export type Response = z.infer<typeof ResponseSchema>;

export const ObserveEventSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('console'), data: z.string() }),
  z.object({ kind: z.literal('state'), run: RunViewSchema }),
  z.object({ kind: z.literal('end'), run: RunViewSchema }),
]);
export type ObserveEvent = z.infer<typeof ObserveEventSchema>;

export const EventSchema = z.object({ type: z.literal('event'), sub: z.number().int(), event: ObserveEventSchema });
export type Event = z.infer<typeof EventSchema>;
