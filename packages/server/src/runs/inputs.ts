import { ErrorCode, INPUT_LIMITS, ProtocolError, inputName, type InputFile, type InputFrom } from '@builder/protocol';
import type { ArtifactStore } from '../store/artifacts.ts';
import type { InputStore, RunInput } from '../store/inputs.ts';
import type { JobStore } from '../store/jobs.ts';
import type { RunRow } from '../store/rows.ts';
import type { RunStore } from '../store/runs.ts';

export interface InputDeps {
  inputs: Pick<InputStore, 'has'>;
  artifacts: Pick<ArtifactStore, 'file' | 'latest' | 'forRun'>;
  jobs: Pick<JobStore, 'getAny'>;
  runs: Pick<RunStore, 'getByNumber' | 'list'>;
}

/**
 * What `execute --input/--input-from` gives a run on `platform`: the user's files (which the server
 * must hold: sent with PUT /inputs) and other runs' artifacts, each under its own file name.
 * Throws ProtocolError naming the input that cannot be had.
 */
export function resolveInputs(
  ctx: InputDeps,
  uploaded: readonly InputFile[],
  from: readonly InputFrom[],
  platform: string,
): RunInput[] {
  const out: RunInput[] = [];
  for (const f of uploaded) {
    if (!ctx.inputs.has(f.sha256, f.size)) {
      throw new ProtocolError(
        ErrorCode.InvalidArgument,
        `input ${f.name}: the server has no file with sha256 ${f.sha256} and ${f.size} bytes (send it with PUT /inputs first; builder-client execute --input does)`,
      );
    }
    out.push({ ...f, from: null });
  }
  for (const spec of from) out.push(artifactInput(ctx, spec, platform));
  const seen = new Set<string>();
  for (const i of out) {
    if (seen.has(i.name)) {
      throw new ProtocolError(ErrorCode.InvalidArgument, `two inputs are named ${i.name}: give files distinct names`);
    }
    seen.add(i.name);
  }
  return out;
}

function artifactInput(ctx: InputDeps, spec: InputFrom, platform: string): RunInput {
  const what = `${spec.job}${spec.number === undefined ? '' : `/${spec.number}`}:${spec.path}`;
  const job = ctx.jobs.getAny(spec.job);
  if (!job) throw new ProtocolError(ErrorCode.NotFound, `--input-from ${what}: no job named "${spec.job}"`);
  let run: { id: string; job: string; number: number; platform: string };
  let file;
  if (spec.number !== undefined) {
    const r = ctx.runs.getByNumber(spec.job, spec.number);
    if (!r)
      throw new ProtocolError(ErrorCode.NotFound, `--input-from ${what}: job ${spec.job} has no run ${spec.number}`);
    run = r;
    file = ctx.artifacts.file(r.id, spec.path);
  } else {
    const latest = ctx.artifacts.latest(spec.job, spec.path, platform);
    if (!latest) {
      const [last] = ctx.runs.list({ job: job.id, state: 'succeeded', platform, limit: 1 });
      throw new ProtocolError(
        ErrorCode.NotFound,
        last
          ? `--input-from ${what}: the latest successful run of ${spec.job} on ${platform} (#${last.number}) has no artifact ${spec.path} (name another run: ${spec.job}/N:${spec.path})`
          : `--input-from ${what}: job ${spec.job} has no successful run on ${platform}`,
      );
    }
    run = { id: latest.runId, job: latest.job, number: latest.number, platform: latest.platform };
    file = latest;
  }
  if (!file) {
    throw new ProtocolError(
      ErrorCode.NotFound,
      `--input-from ${what}: run ${run.job}#${run.number} has no artifact ${spec.path}`,
    );
  }
  return {
    name: inputName(spec.path),
    size: file.size,
    sha256: file.sha256,
    from: { job: run.job, number: run.number, platform: run.platform, path: spec.path },
  };
}

/**
 * The artifacts of `run` as inputs under their own paths (the first INPUT_LIMITS.maxInputs, by
 * path): what an `after:` run builds from.
 */
export function artifactsAsInputs(ctx: { artifacts: Pick<ArtifactStore, 'forRun'> }, run: RunRow): RunInput[] {
  return ctx.artifacts
    .forRun(run.id)
    .slice(0, INPUT_LIMITS.maxInputs)
    .map((a) => ({
      name: a.path,
      size: a.size,
      sha256: a.sha256,
      from: { job: run.job, number: run.number, platform: run.platform, path: a.path },
    }));
}
