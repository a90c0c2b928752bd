import type { Command } from 'commander';
import type { MethodParamsInput } from '@builder/protocol';
import type { Context } from '../cli/context.ts';
import { collectList, collectParam } from '../cli/options.ts';
import { CliError } from '../errors.ts';
import { ExitCode } from '../exit.ts';
import { runLabel } from '../format.ts';
import type { Runner } from '../program.ts';
import { exitCodeForRuns, followRuns } from './follow.ts';

interface ExecuteOptions {
  platform?: string[];
  param?: Record<string, string>;
  next?: boolean;
  follow?: boolean;
  ref?: string;
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
    .option(
      '--rebuild <n>',
      'run the job’s run N again: same commit, script and parameters, on another worker if one is free',
    )
    .option('--follow', 'stream the console and exit with the status (0 only if all runs succeeded)')
    .addHelpText('after', '\nWith several runs, --follow prefixes each console line with [PLATFORM].')
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
  ctx.checkParams('execute', params);
  const conn = await ctx.connect();
  try {
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
    const finals = await followRuns(
      ctx,
      conn,
      runs.map((r) => ({ ref: r.id, prefix: prefixed ? `[${r.platform}] ` : '' })),
    );
    const exitCode = exitCodeForRuns(finals);
    if (ctx.json) ctx.printJson({ kind: 'result', runs: finals, exitCode });
    return exitCode;
  } finally {
    await conn.close();
  }
}
