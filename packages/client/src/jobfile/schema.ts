import { z } from 'zod';

/** `90`, `90s`, `30m`, `1h`, `1.5h`, `2d`, `1h30m`: whole or fractional seconds, minutes, hours, days. */
const DURATION_PATTERN = /^(?:\d+(?:\.\d+)?[smhd])+$|^\d+(?:\.\d+)?$/;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

const Duration = z
  .union([
    z.number().nonnegative(),
    z.string().regex(DURATION_PATTERN, 'must be seconds or a duration such as 90s, 30m, 1h30m or 2d'),
  ])
  .describe('seconds, or a duration such as 90s, 30m, 1h30m or 2d');

/** Seconds in a duration the schema accepted. */
export function durationSeconds(value: number | string): number {
  if (typeof value === 'number') return value;
  if (/^\d+(?:\.\d+)?$/.test(value)) return Number(value);
  let total = 0;
  for (const m of value.matchAll(/(\d+(?:\.\d+)?)([smhd])/g)) {
    total += Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS];
  }
  return total;
}

const Platforms = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)], {
  error: 'must be a platform name or a list of them',
});

/**
 * One job per file. Friendly keys (`timeout: 1h`, `script_file:`, `template:` + `vars:`) that `apply`
 * maps onto the wire's JobSpec; the server's own rules (names, limits) are checked after the mapping.
 * `schemas/job.schema.json` is generated from this (scripts/job-schema.mjs), never edited by hand.
 */
export const JobFileSchema = z
  .strictObject({
    name: z.string().min(1).optional().describe("the job's name; default: the file name without its extension"),
    platforms: Platforms.describe('platform or platforms to run on'),
    script: z.string().min(1).optional().describe('the shell script, inline'),
    script_file: z.string().min(1).optional().describe("the shell script's file, relative to this file"),
    prepare: z
      .string()
      .min(1)
      .optional()
      .describe('a step before the script, in the same sandbox, as root with network (build dependencies), inline'),
    prepare_file: z.string().min(1).optional().describe("the prepare step's file, relative to this file"),
    template: z.string().min(1).optional().describe('render this template once per platform instead of a script'),
    vars: z.record(z.string(), z.string()).optional().describe('template variables for {{NAME}}'),
    schedule: z
      .string()
      .min(1)
      .nullable()
      .optional()
      .describe('cron expression (5 or 6 fields) or a preset such as @daily; absent: on demand only'),
    timezone: z.string().min(1).optional().describe('IANA time zone of the schedule (default UTC)'),
    missed: z.enum(['skip', 'once']).optional().describe('runs missed while the server was down (default once)'),
    timeout: Duration.optional().describe('kill the run after this long (default 1h)'),
    kill_grace: Duration.optional().describe('between SIGTERM and SIGKILL (default 10s)'),
    retries: z.number().int().min(0).optional().describe('retry a failed attempt this often (default 0)'),
    retry_backoff: Duration.optional().describe('wait before a retry (default 10s)'),
    concurrency: z.number().int().min(1).optional().describe('runs of this job at once per platform (default 1)'),
    params: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
      .optional()
      .describe('job parameters (environment variables)'),
    secrets: z.array(z.string()).optional().describe('names of secrets (set with `secret set`) the job gets'),
    alert_webhooks: z.array(z.string()).optional().describe("POST this job's alerts here too"),
    source: z
      .strictObject({
        git: z.string().min(1).describe('repository URL'),
        ref: z.string().min(1).default('HEAD').describe('branch, tag or commit (default HEAD)'),
      })
      .optional()
      .describe("the job's sources"),
    after: z
      .string()
      .min(1)
      .optional()
      .describe("run after each success of this job on a platform, with that run's artifacts in $BUILDER_INPUT"),
  })
  .superRefine((file, ctx) => {
    const given = (['script', 'script_file', 'template'] as const).filter((k) => file[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: given.length > 1 ? [given[1] ?? 'script'] : [],
        message: 'give exactly one of script, script_file or template',
      });
    }
    if (file.prepare !== undefined && file.prepare_file !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['prepare_file'], message: 'give prepare or prepare_file, not both' });
    }
    if (file.vars !== undefined && file.template === undefined) {
      ctx.addIssue({ code: 'custom', path: ['vars'], message: 'vars needs template' });
    }
  });
export type JobFile = z.infer<typeof JobFileSchema>;

/** The published JSON Schema of a job file. */
export function jobFileJsonSchema(): unknown {
  return {
    ...z.toJSONSchema(JobFileSchema, { io: 'input' }),
    title: 'builder job file',
  };
}
