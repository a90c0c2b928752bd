import type { Command } from 'commander';
import type { Context } from '../cli/context.ts';
import { ExitCode } from '../exit.ts';
import { formatRunState, runLabel } from '../format.ts';
import type { Runner } from '../program.ts';

export function registerAdminCommands(program: Command, run: Runner): void {
  program
    .command('cancel')
    .description('cancel a queued or running run (TERM, grace, KILL)')
    .argument('<run>', 'UUID, JOB/N or JOB#N')
    .option('--reason <text>', 'recorded with the run')
    .action((ref: string, opts: { reason?: string }, cmd: Command) => run(cmd, (ctx) => cancel(ctx, ref, opts.reason)));

  program
    .command('drop-platform')
    .description('pause a platform: none of its runs starts until undrop-platform')
    .argument('<platform>')
    .action((platform: string, _opts: unknown, cmd: Command) => run(cmd, (ctx) => setDropped(ctx, platform, true)));

  program
    .command('undrop-platform')
    .description('resume a dropped platform')
    .argument('<platform>')
    .action((platform: string, _opts: unknown, cmd: Command) => run(cmd, (ctx) => setDropped(ctx, platform, false)));
}

async function cancel(ctx: Context, ref: string, reason: string | undefined): Promise<number> {
  const result = await ctx.rpc('cancel', { run: ref, ...(reason !== undefined && { reason }) });
  if (ctx.json) ctx.printJson(result);
  else ctx.out(`${runLabel(result)}: ${formatRunState(result)}`);
  return ExitCode.Ok;
}

async function setDropped(ctx: Context, platform: string, drop: boolean): Promise<number> {
  const result = drop ? await ctx.rpc('dropPlatform', { platform }) : await ctx.rpc('undropPlatform', { platform });
  const verb = drop ? 'dropped' : 'undropped';
  if (ctx.json) ctx.printJson(result);
  else
    ctx.out(result.changed ? `platform ${result.platform} ${verb}` : `platform ${result.platform} was already ${verb}`);
  return ExitCode.Ok;
}
