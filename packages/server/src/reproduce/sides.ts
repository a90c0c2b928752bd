import type { ArtifactStore } from '../store/artifacts.ts';
import type { InputStore } from '../store/inputs.ts';
import type { RunRow } from '../store/rows.ts';
import type { RunStore } from '../store/runs.ts';
import type { RunSide } from './compare.ts';

/** A run with where it ran and what it made, as compare and provenance read it. */
export function runSide(
  ctx: { runs: Pick<RunStore, 'environments'>; artifacts: ArtifactStore; inputs: Pick<InputStore, 'forRun'> },
  run: RunRow,
): RunSide {
  return {
    run,
    environment: ctx.runs.environments.forRun(run.id),
    artifacts: ctx.artifacts.forRun(run.id),
    inputs: ctx.inputs.forRun(run.id),
  };
}
