import { SecretMask } from '../console/secret-mask.ts';
import type { JobStore } from '../store/jobs.ts';
import type { SecretStore } from '../store/secrets.ts';
import type { ActiveRun } from './active.ts';

/**
 * The secret mask of an active run, made on its first output from the values its job may see
 * now (null when the job asks for no secret: its output is stored as it comes, at no cost).
 */
export function maskOf(
  ctx: { jobs: Pick<JobStore, 'getById'>; secrets: Pick<SecretStore, 'valuesFor'> },
  a: ActiveRun,
): SecretMask | null {
  if (a.mask !== undefined) return a.mask;
  const job = ctx.jobs.getById(a.jobId);
  const values = job && job.secrets.length > 0 ? ctx.secrets.valuesFor(job.name, job.secrets) : [];
  a.mask = values.length > 0 || (a.carry?.length ?? 0) > 0 ? new SecretMask(values, a.carry ?? null) : null;
  a.carry = undefined;
  return a.mask;
}
