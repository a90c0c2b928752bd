import { Option, type Command } from 'commander';
import { parseRunRef, RUN_STATES, type MethodParamsInput, type RunState } from '@builder/protocol';
import type { Context } from '../cli/context.ts';
import { intOption } from '../cli/options.ts';
import { ExitCode } from '../exit.ts';
import type { Runner } from '../program.ts';
import { renderInfo, renderJob, renderJobs, renderRun, renderRuns, renderWorkers } from '../render.ts';

interface RunsOptions {
  state?: RunState;
  platform?: string;
  limit?: number;
}

export function registerQueryCommands(program: Command, run: Runner): void {
  program
    .command('info')
    .description('server overview; or a job (NAME), or a run with its script (UUID, JOB/N or JOB#N)')
    .argument('[target]', 'job name or run')
    .action((target: string | undefined, _opts: unknown, cmd: Command) => run(cmd, (ctx) => info(ctx, target)));

  program
    .command('jobs')
    .description('list jobs with their schedule and last run')
    .action((_opts: unknown, cmd: Command) => run(cmd, (ctx) => jobs(ctx)));

  program
    .command('runs')
    .description('list recent runs, newest first; queued runs say why they wait')
    .argument('[job]', 'only runs of this job')
    .addOption(new Option('--state <state>', 'only runs in this state').choices(RUN_STATES))
    .option('--platform <platform>', 'only runs on this platform')
    .option('--limit <n>', 'at most this many (default 20)', intOption(1, 1000))
    .action((job: string | undefined, opts: RunsOptions, cmd: Command) => run(cmd, (ctx) => runs(ctx, job, opts)));

  program
    .command('workers')
    .description('list workers, their platform and load')
    .action((_opts: unknown, cmd: Command) => run(cmd, (ctx) => workers(ctx)));
}

async function info(ctx: Context, target: string | undefined): Promise<number> {
  if (target === undefined) {
    const result = await ctx.rpc('info', {});
    if (ctx.json) ctx.printJson(result);
    else ctx.out(renderInfo(result));
  } else if (parseRunRef(target)) {
    const result = await ctx.rpc('run', { run: target });
    if (ctx.json) ctx.printJson(result);
    else ctx.out(renderRun(result, ctx.now()));
  } else {
    const result = await ctx.rpc('job', { name: target });
    if (ctx.json) ctx.printJson(result);
    else ctx.out(renderJob(result.job, result.runs, ctx.now()));
  }
  return ExitCode.Ok;
}

async function jobs(ctx: Context): Promise<number> {
  const result = await ctx.rpc('jobs', {});
  if (ctx.json) ctx.printJson(result);
  else ctx.out(renderJobs(result, ctx.now()));
  return ExitCode.Ok;
}

async function runs(ctx: Context, job: string | undefined, opts: RunsOptions): Promise<number> {
  const params: MethodParamsInput<'runs'> = {
    ...(job !== undefined && { job }),
    ...(opts.state !== undefined && { state: opts.state }),
    ...(opts.platform !== undefined && { platform: opts.platform }),
    ...(opts.limit !== undefined && { limit: opts.limit }),
  };
  const result = await ctx.rpc('runs', params);
  if (ctx.json) ctx.printJson(result);
  else ctx.out(renderRuns(result, ctx.now()));
  return ExitCode.Ok;
}

async function workers(ctx: Context): Promise<number> {
  const result = await ctx.rpc('workers', {});
  if (ctx.json) ctx.printJson(result);
  else ctx.out(renderWorkers(result, ctx.now()));
  return ExitCode.Ok;
}
