import { z } from 'zod';
import { LIMITS, NAME_PATTERN, PARAM_NAME_PATTERN, TEMPLATE_VAR_PATTERN } from './limits.ts';

export const NameSchema = z
  .string()
  .max(LIMITS.maxNameLength)
  .regex(NAME_PATTERN, 'must start with a letter or digit and contain only letters, digits, ".", "_" and "-"');

export const ParamsSchema = z
  .record(
    z.string().regex(PARAM_NAME_PATTERN, 'parameter names are shell variable names (A-Z, a-z, 0-9, _)'),
    z.string().max(LIMITS.maxParamValueLength),
  )
  .refine((p) => Object.keys(p).length <= LIMITS.maxParams, `at most ${LIMITS.maxParams} parameters`);
export type Params = z.infer<typeof ParamsSchema>;

/** Secrets reach jobs as environment variables, under their own names. */
export const SecretNameSchema = z
  .string()
  .max(LIMITS.maxNameLength)
  .regex(PARAM_NAME_PATTERN, 'secret names are shell variable names (A-Z, a-z, 0-9, _)');

/** Which template a job's scripts were rendered from, and with what: shown to users, never re-rendered. */
export const TemplateRefSchema = z.object({
  name: NameSchema,
  vars: z
    .record(
      z.string().regex(TEMPLATE_VAR_PATTERN, 'template variable names are A-Z, 0-9 and _, not starting with a digit'),
      z.string().max(LIMITS.maxParamValueLength),
    )
    .refine((v) => Object.keys(v).length <= LIMITS.maxTemplateVars, `at most ${LIMITS.maxTemplateVars} variables`),
});
export type TemplateRef = z.infer<typeof TemplateRefSchema>;

export const RunIdSchema = z.uuid();
export const AttemptSchema = z.number().int().min(1).max(1000);
export const SeqSchema = z.number().int().min(0);
/** Milliseconds since the epoch (fractional allowed: latency is measured below 1 ms). */
export const TimeSchema = z.number().nonnegative();

export const RoleSchema = z.enum(['admin', 'read', 'worker']);
export type Role = z.infer<typeof RoleSchema>;

/** A git ref (branch, tag or commit); never option-like, never with control characters. */
export const GitRefSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[^-\s][^\s\x00-\x1f\x7f]*$/, 'a branch, tag or commit, not starting with -');

/** Where a job's source comes from: a repository git can fetch (URL or path) and a ref. */
export const GitSourceSchema = z.object({
  git: z
    .string()
    .min(1)
    .max(2048)
    .regex(/^[^-\x00-\x1f][^\x00-\x1f\x7f]*$/, 'a git URL or path, not starting with -'),
  ref: GitRefSchema.default('HEAD'),
});
export type GitSource = z.infer<typeof GitSourceSchema>;

export const CommitShaSchema = z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, 'a full commit SHA');
