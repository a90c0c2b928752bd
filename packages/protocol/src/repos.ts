import { z } from 'zod';
import { NameSchema, TimeSchema } from './common.ts';

/** A Debian suite or codename, a component: what apt puts in a URL path. */
const DistPartSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9.+_-]*$/, 'use lowercase letters, digits, ".", "+", "_" and "-" (e.g. bookworm, main)');

/** `JOB` or `JOB:PLATFORM`: a job whose succeeded runs (on every platform, or one) feed a repository. */
export const RepoSourceSchema = z.object({ job: NameSchema, platform: NameSchema.optional() });

export const RepoSpecSchema = z.object({
  name: NameSchema,
  suite: DistPartSchema,
  component: DistPartSchema.default('main'),
  /** Versions of each package kept in the index (older ones can be pinned to roll back). */
  keep: z.number().int().min(1).max(100).default(3),
  jobs: z.array(RepoSourceSchema).min(1).max(64),
});
export type RepoSpecInput = z.input<typeof RepoSpecSchema>;

export const RepoPackageViewSchema = z.object({
  kind: z.enum(['deb', 'pkg']),
  name: z.string(),
  version: z.string(),
  arch: z.string(),
  filename: z.string(),
  sha256: z.string(),
  size: z.number(),
  job: z.string(),
  number: z.number().int(),
});

export const RepoViewSchema = z.object({
  name: z.string(),
  suite: z.string(),
  component: z.string(),
  keep: z.number().int(),
  jobs: z.array(z.object({ job: z.string(), platform: z.string().nullable() })),
  /** The newest published generation of its indices; null before the first. */
  generation: z.number().int().nullable(),
  publishedAt: TimeSchema.nullable(),
  packages: z.array(RepoPackageViewSchema),
  /** Files of its runs that are not valid packages, with why. */
  refused: z.array(z.object({ job: z.string(), number: z.number().int(), path: z.string(), problem: z.string() })),
});
export type RepoView = z.infer<typeof RepoViewSchema>;
