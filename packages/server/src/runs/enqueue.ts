import { ErrorCode, ProtocolError, type Params } from '@builder/protocol';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { RunEvents } from '../run-events.ts';
import type { GroupCommit } from '../store/group-commit.ts';
import type { InputStore, RunInput } from '../store/inputs.ts';
import type { JobStore } from '../store/jobs.ts';
import type { PlatformStore } from '../store/platforms.ts';
import { prepareFor, scriptFor, type JobRow, type RunRow } from '../store/rows.ts';
import type { RunStore } from '../store/runs.ts';

export interface EnqueueDeps {
  commit: GroupCommit;
  runs: RunStore;
  jobs: Pick<JobStore, 'allocateNumber'>;
  platforms: Pick<PlatformStore, 'isDropped'>;
  inputs: Pick<InputStore, 'record' | 'forRun'>;
  events: RunEvents;
  clock: Clock;
  logger: Logger;
}

export interface EnqueueOptions {
  platforms?: string[];
  params: Params;
  trigger: RunRow['trigger'];
  /** "run next": ahead of everything queued at normal priority. */
  next: boolean;
  /** Another ref of the job's source than its own (execute --ref). */
  ref?: string;
  /** Each run's inputs (`$BUILDER_INPUT`), by its platform. */
  inputs?: (platform: string) => RunInput[];
  /** The run whose success queued these (`after:`). */
  afterRun?: string;
}

/**
 * Queue one run of `job` per platform (all of the job's platforms unless some are named), each with
 * that platform's script (a templated job has one per platform).
 */
export function enqueue(ctx: EnqueueDeps, job: JobRow, opts: EnqueueOptions): RunRow[] {
  const platforms = opts.platforms ?? job.platforms;
  for (const p of platforms) {
    if (!job.platforms.includes(p)) {
      throw new ProtocolError(
        ErrorCode.InvalidArgument,
        `job ${job.name} does not build for platform ${p} (it builds for: ${job.platforms.join(', ')})`,
      );
    }
  }
  if (opts.ref !== undefined && job.source === null) {
    throw new ProtocolError(ErrorCode.InvalidArgument, `job ${job.name} has no source: --ref needs one (--source-git)`);
  }
  const ref = job.source === null ? null : (opts.ref ?? job.source.ref);
  const now = ctx.clock.now();
  // resolved before the batch: a missing artifact refuses the whole execute, nothing half queued
  const unique = [...new Set(platforms)];
  const inputs = new Map(unique.map((p) => [p, opts.inputs?.(p) ?? []]));
  const runs = ctx.commit.write(() =>
    unique.map((platform) => {
      const run = ctx.runs.insert({
        jobId: job.id,
        number: ctx.jobs.allocateNumber(job.id),
        platform,
        script: scriptFor(job, platform),
        prepare: prepareFor(job, platform),
        params: { ...job.params, ...opts.params },
        trigger: opts.trigger,
        maxAttempts: job.retries + 1,
        retryBackoffSec: job.retryBackoffSec,
        timeoutSec: job.timeoutSec,
        killGraceSec: job.killGraceSec,
        priority: opts.next ? 1 : 0,
        queuedAt: now,
        ref,
        afterRun: opts.afterRun ?? null,
      });
      ctx.inputs.record(run.id, inputs.get(platform) ?? []);
      ctx.logger.debug('run.queued', {
        run: run.id,
        job: job.name,
        number: run.number,
        platform,
        trigger: opts.trigger,
      });
      return run;
    }),
  );
  for (const run of runs) ctx.events.emit({ type: 'queued', run });
  return runs;
}

/**
 * A schedule fired: queue runs for the job's platforms that are not dropped and do not already have
 * a run waiting (a firing while the previous one still waits is folded into it, not piled up).
 */
export function enqueueScheduled(ctx: EnqueueDeps, job: JobRow, trigger: 'schedule' | 'missed'): RunRow[] {
  const platforms = job.platforms.filter((p) => {
    if (ctx.platforms.isDropped(p)) return false;
    const waiting = ctx.runs.hasQueued(job.id, p);
    if (waiting) ctx.logger.info('schedule.coalesced', { job: job.name, platform: p });
    return !waiting;
  });
  if (platforms.length === 0) return [];
  return enqueue(ctx, job, { platforms, params: {}, trigger, next: false });
}

/**
 * `execute J --rebuild N`: run N again as it ran (its platform, script, parameters and the commit
 * its worker checked out, not the job's ref as it is now), recorded as a rebuild of N; the
 * dispatcher prefers another worker than N's. N's inputs (by SHA-256) are the rebuild's too.
 */
export function enqueueRebuild(ctx: EnqueueDeps, job: JobRow, number: number, next: boolean): RunRow {
  const original = ctx.runs.getByNumber(job.name, number);
  if (!original) throw new ProtocolError(ErrorCode.NotFound, `job ${job.name} has no run ${number}`);
  if (original.ref !== null && original.commit === null) {
    throw new ProtocolError(
      ErrorCode.InvalidArgument,
      `run ${job.name}#${number} never fetched its source: there is no commit to build again`,
    );
  }
  const now = ctx.clock.now();
  const inputs = ctx.inputs.forRun(original.id);
  const run = ctx.commit.write(() => {
    const rebuild = ctx.runs.insert({
      jobId: job.id,
      number: ctx.jobs.allocateNumber(job.id),
      platform: original.platform,
      script: original.script,
      params: original.params,
      trigger: 'rebuild',
      maxAttempts: job.retries + 1,
      retryBackoffSec: job.retryBackoffSec,
      timeoutSec: original.timeoutSec,
      killGraceSec: original.killGraceSec,
      priority: next ? 1 : 0,
      queuedAt: now,
      ref: original.commit ?? original.ref,
      rebuildOf: original.number,
    });
    ctx.inputs.record(rebuild.id, inputs);
    return rebuild;
  });
  ctx.logger.debug('run.queued', { run: run.id, job: job.name, number: run.number, rebuildOf: number });
  ctx.events.emit({ type: 'queued', run });
  return run;
}
