import { z } from 'zod';
import { EnvPackageSchema } from './environment.ts';

const SideSchema = z.object({
  number: z.number().int(),
  state: z.string(),
  platform: z.string(),
  worker: z.string().nullable(),
  commit: z.string().nullable(),
  base: z.string().nullable(),
  packagesSha256: z.string().nullable(),
});

const FileSchema = z.object({ path: z.string(), sha256: z.string(), size: z.number() });

/** `/job/J/compare/A/B` in JSON: what differs between two runs of a job. */
export const ComparisonSchema = z.object({
  job: z.string(),
  a: SideSchema,
  b: SideSchema,
  commit: z.object({ same: z.boolean() }),
  script: z.object({ same: z.boolean(), a: z.string(), b: z.string() }),
  params: z.object({
    same: z.boolean(),
    changed: z.array(z.object({ name: z.string(), a: z.string().nullable(), b: z.string().nullable() })),
  }),
  /** The files each run built from ($BUILDER_INPUT), by name: changed when the SHA-256 differs or one lacks it. */
  inputs: z.object({
    same: z.boolean(),
    changed: z.array(z.object({ name: z.string(), a: z.string().nullable(), b: z.string().nullable() })),
  }),
  environment: z.object({
    /** Both runs report an environment; when not, the package lists cannot be compared. */
    known: z.boolean(),
    same: z.boolean(),
    added: z.array(EnvPackageSchema),
    removed: z.array(EnvPackageSchema),
    changed: z.array(z.object({ name: z.string(), arch: z.string(), a: z.string(), b: z.string() })),
  }),
  artifacts: z.object({
    same: z.array(FileSchema),
    changed: z.array(z.object({ path: z.string(), a: FileSchema, b: FileSchema })),
    added: z.array(FileSchema),
    removed: z.array(FileSchema),
  }),
  /** Both have files and they are the same paths with the same SHA-256. */
  reproducible: z.boolean(),
});
export type Comparison = z.infer<typeof ComparisonSchema>;
