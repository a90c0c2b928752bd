import { z } from 'zod';
import { ArtifactPathSchema, SHA256_PATTERN } from './artifacts.ts';
import { NameSchema } from './common.ts';

/*
 * A run's inputs: files placed in `$BUILDER_INPUT` before its job starts. Their bytes are blobs of
 * the artifact store (one copy per SHA-256): a user's files are sent with `PUT /inputs` (the
 * artifact transfer format) before `execute`, another run's artifacts are already there. The
 * worker fetches each with `GET /inputs/RUN/ATTEMPT/NAME` (its token and the attempt's secret) and
 * checks its SHA-256 before the job sees it.
 */

export const INPUT_LIMITS = {
  /** Inputs of one run (an `after:` run gets every artifact of the run before it, up to this). */
  maxInputs: 10_000,
} as const;

const Sha256Schema = z.string().regex(SHA256_PATTERN, 'sha256 must be 64 lower-case hex digits');

/** A file as the worker gets it: its path under the input dir, size and SHA-256. */
export const InputFileSchema = z.object({
  name: ArtifactPathSchema,
  size: z.number().int().nonnegative(),
  sha256: Sha256Schema,
});
export type InputFile = z.infer<typeof InputFileSchema>;

/** Where an input came from: another run's artifact, or (null) a user's file sent with execute. */
export const InputOriginSchema = z
  .object({ job: z.string(), number: z.number().int(), platform: z.string(), path: z.string() })
  .nullable();
export type InputOrigin = z.infer<typeof InputOriginSchema>;

export const RunInputViewSchema = InputFileSchema.extend({ from: InputOriginSchema });
export type RunInputView = z.infer<typeof RunInputViewSchema>;

/** `execute --input-from JOB[/N]:PATH`: the artifact PATH of run N, or of JOB's latest success on the run's platform. */
export const InputFromSchema = z.object({
  job: NameSchema,
  number: z.number().int().min(1).optional(),
  path: ArtifactPathSchema,
});
export type InputFrom = z.infer<typeof InputFromSchema>;

/** `JOB[/N]:PATH` as a user writes it; undefined when it is not that. */
export function parseInputFrom(text: string): InputFrom | undefined {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:[/#](\d+))?:(.+)$/.exec(text);
  if (!m) return undefined;
  const parsed = InputFromSchema.safeParse({
    job: m[1],
    ...(m[2] !== undefined && { number: Number(m[2]) }),
    path: m[3],
  });
  return parsed.success ? parsed.data : undefined;
}

/** The name an input gets in the input dir: the file's own name. */
export function inputName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
