import type { Command } from 'commander';
import type { MethodParamsInput } from '@builder/protocol';
import type { Context } from '../cli/context.ts';
import { collectList, collectParam, secondsOption } from '../cli/options.ts';
import { CliError } from '../errors.ts';
import { ExitCode } from '../exit.ts';
import { runLabel } from '../format.ts';
import type { Runner } from '../program.ts';
import { exitCodeForRuns, followRunsResuming } from './follow.ts';
import { prepareInputs, sendInputs } from './inputs.ts';

interface ExecuteOptions {
  platform?: string[];
  param?: Record<string, string>;
  next?: boolean;
  follow?: boolean;
  ref?: string;
  giveUp: number;
  input?: string[];
  inputFrom?: string[];
  rebuild?: string;
}

export function registerExecuteCommand(program: Command, run: Runner): void {
  program
    .command('execute')
    .description('queue a run of a job now, one per platform')
    .argument('<name>', 'job name')
    .option('--platform <platform>', 'only these platforms (default: all of the job); repeatable', collectList)
    .option('--param <key=value>', 'override a job parameter; repeatable', collectParam)
    .option('--next', 'put the runs at the head of their queues')
    .option('--ref <ref>', "build this branch, tag or commit of the job's source instead of its own ref")
    .option('--input <file...>', 'give the job these files in $BUILDER_INPUT (sent once per content); repeatable')
    .option(
      '--input-from <job[/n]:path>',
      "give the job another run's artifact: JOB's latest success on the same platform, or run N; repeatable",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option(
      '--rebuild <n>',
      'run the job’s run N again: same commit, script and parameters, on another worker if one is free',
    )
    .option('--follow', 'stream the console and exit with the status (0 only if all runs succeeded)')
    .option(
      '--give-up <secs>',
      'with --follow: exit 4 after being unable to reach the server this long',
      secondsOption(0, 7 * 24 * 3600),
      300,
    )
    .addHelpText(
      'after',
      `
With several runs, --follow prefixes each console line with [PLATFORM]. A connection lost while
following is retried as watch does (backoff and jitter, at most 5 s apart) and the console resumes
where it stopped, no line lost or doubled; the runs go on on the server meanwhile.`,
    )
    .action((name: string, opts: ExecuteOptions, cmd: Command) => run(cmd, (ctx) => execute(ctx, name, opts)));
}

function runNumber(text: string): number {
  const n = /^#?(\d{1,9})$/.exec(text)?.[1];
  if (n === undefined || Number(n) < 1)
    throw new CliError(ExitCode.Usage, `--rebuild takes a run number (got "${text}")`);
  return Number(n);
}

async function execute(ctx: Context, name: string, opts: ExecuteOptions): Promise<number> {
  const params: MethodParamsInput<'execute'> = {
    name,
    ...(opts.platform !== undefined && { platforms: opts.platform }),
    ...(opts.param !== undefined && { params: opts.param }),
    ...(opts.next === true && { next: true }),
    ...(opts.ref !== undefined && { ref: opts.ref }),
    ...(opts.rebuild !== undefined && { rebuild: runNumber(opts.rebuild) }),
  };
  const inputs = await prepareInputs(opts.input ?? [], opts.inputFrom ?? []);
  if (inputs.from.length > 0) params.inputsFrom = inputs.from;
  ctx.checkParams('execute', params);
  const conn = await ctx.connect();
  try {
    if (inputs.files.length > 0) params.inputs = await sendInputs(ctx, inputs.files);
    const result = await conn.call('execute', params);
    const runs = result.runs;
    if (ctx.json) ctx.printJson(result);
    else
      for (const r of runs)
        ctx.out(
          `${runLabel(r)} ${r.platform} queued ${r.id}${r.rebuildOf !== null ? ` (rebuild of #${r.rebuildOf})` : ''}`,
        );
    if (!opts.follow) return ExitCode.Ok;
    const prefixed = runs.length > 1;
    const finals = await followRunsResuming(
      ctx,
      conn,
      runs.map((r) => ({ ref: r.id, prefix: prefixed ? `[${r.platform}] ` : '' })),
      opts.giveUp * 1000,
    );
    const exitCode = exitCodeForRuns(finals);
    if (ctx.json) ctx.printJson({ kind: 'result', runs: finals, exitCode });
    return exitCode;
  } finally {
    await conn.close();
  }
}
