import { ErrorCode, ProtocolError } from '@builder/protocol';
import type { Logger } from '../log.ts';
import type { RunEvents } from '../run-events.ts';
import type { ArtifactStore } from '../store/artifacts.ts';
import type { JobStore } from '../store/jobs.ts';
import type { RunRow } from '../store/rows.ts';
import type { RunStore } from '../store/runs.ts';
import { enqueue, type EnqueueDeps } from './enqueue.ts';
import { artifactsAsInputs } from './inputs.ts';

export interface ChainDeps extends EnqueueDeps {
  jobs: Pick<JobStore, 'allocateNumber' | 'followers'>;
  runs: RunStore;
  artifacts: Pick<ArtifactStore, 'forRun'>;
  events: RunEvents;
  logger: Logger;
  /** A line from the server in a run's console (Lifecycle.systemLine). */
  systemLine: (runId: string, text: string) => void;
}

/**
 * `after: JOB`: each success of JOB on a platform queues one run of every job that follows it, on
 * that platform, with the successful run's artifacts as its inputs. The run is queued in the batch
 * that records the success (RunEvents.beforeCommit), so both are durable together or not at all; a
 * unique index on (job, after_run) keeps a repeated end from queuing it twice.
 */
export class Chains {
  constructor(private readonly ctx: ChainDeps) {
    ctx.events.beforeCommit((events) => {
      for (const e of events) if (e.type === 'ended' && e.run.state === 'succeeded') this.follow(e.run);
    });
  }

  private follow(run: RunRow): void {
    const { ctx } = this;
    for (const job of ctx.jobs.followers(run.job)) {
      if (!job.platforms.includes(run.platform)) {
        ctx.logger.info('chain.skipped', { job: job.name, after: run.job, platform: run.platform });
        continue;
      }
      if (ctx.runs.hasFollower(job.id, run.id)) continue;
      const inputs = artifactsAsInputs(ctx, run);
      const [next] = enqueue(ctx, job, {
        platforms: [run.platform],
        params: {},
        trigger: 'after',
        next: false,
        afterRun: run.id,
        inputs: () => inputs,
      });
      if (!next) continue;
      ctx.logger.info('chain.queued', { job: job.name, number: next.number, after: run.job, afterNumber: run.number });
      const all = ctx.artifacts.forRun(run.id).length;
      const files =
        all > inputs.length
          ? `the first ${inputs.length} of its ${all} files (the limit of inputs per run)`
          : `${inputs.length} input${inputs.length === 1 ? '' : 's'}`;
      ctx.systemLine(
        next.id,
        `queued after ${run.job}#${run.number} succeeded on ${run.platform}, with its artifacts: ${files}`,
      );
    }
  }
}

/**
 * Refuse `after:` naming a job that does not exist, or one that (through its own `after:`) runs
 * after `name`: a chain that never ends.
 */
export function checkAfter(jobs: Pick<JobStore, 'get'>, name: string, after: string | null): void {
  if (after === null) return;
  const path = [name, after];
  if (after === name) throw cycle(path);
  let next = jobs.get(after);
  if (!next) {
    throw new ProtocolError(
      ErrorCode.InvalidArgument,
      `after: no job named "${after}" (schedule or apply it first; apply orders its files by after:)`,
    );
  }
  while (next?.after) {
    const at: string = next.after;
    path.push(at);
    if (at === name) throw cycle(path);
    if (path.indexOf(at) < path.length - 1) return; // a loop that does not pass here: not this job's doing
    next = jobs.get(at);
  }
}

function cycle(path: string[]): ProtocolError {
  return new ProtocolError(
    ErrorCode.InvalidArgument,
    `after: ${path.join(' → ')} would be a cycle (each job would wait for itself)`,
  );
}
