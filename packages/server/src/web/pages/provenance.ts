import { isTerminal, type DsseEnvelope } from '@builder/protocol';
import type { SiteDeps } from '../deps.ts';
import { provenanceStatement, signStatement } from '../../reproduce/provenance.ts';
import { runSide } from '../../reproduce/sides.ts';
import { links } from '../links.ts';
import { findRun } from './run.ts';
import { PageError } from './page.ts';

/**
 * `/job/J/run/N/provenance.json`: the run's SLSA provenance in a DSSE envelope signed with the
 * server's key. Made from what is stored, so the same run always gets the same document.
 */
export function provenanceEnvelope(ctx: SiteDeps, job: string, number: number): DsseEnvelope {
  const run = findRun(ctx, job, number);
  if (!isTerminal(run.state)) throw new PageError(404, `run ${job}#${number} has not finished: no provenance yet`);
  // what it made, where, and from which inputs: read as compare reads a run
  const side = runSide(ctx, run);
  if (side.artifacts.length === 0)
    throw new PageError(404, `run ${job}#${number} made no files: there is no provenance`);
  const base = ctx.publicUrl ?? '';
  const statement = provenanceStatement({
    ...side,
    job: ctx.jobs.getById(run.jobId),
    serverUrl: base,
    runUrl: `${base}${links.run(run.job, run.number)}`,
  });
  return signStatement(statement, ctx.provenanceKey);
}
