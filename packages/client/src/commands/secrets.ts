import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Context } from '../cli/context.ts';
import { CliError } from '../errors.ts';
import { ExitCode } from '../exit.ts';
import type { Runner } from '../program.ts';

/**
 * `secret set|list|rm`: values a job gets as environment variables and nobody else ever sees.
 * A value is read from standard input or a file, never from the command line, where `ps`, shell
 * history and CI logs would keep it.
 */
export function registerSecretCommands(program: Command, run: Runner): void {
  const secret = program
    .command('secret')
    .description('secrets jobs ask for by name (schedule --secret NAME); admin only, values never shown');

  secret
    .command('set')
    .description('store a secret, its value read from standard input (one trailing newline dropped) or --from-file')
    .argument('<name>', 'the environment variable the job sees, e.g. SIGNING_KEY')
    .option('--job <job>', "this job's own (it wins over a secret of the same name for all jobs)")
    .option('--from-file <file>', 'read the value from this file, byte for byte')
    .action((name: string, opts: { job?: string; fromFile?: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const value = opts.fromFile !== undefined ? await readValueFile(opts.fromFile) : await readStdin(ctx, name);
        if (value.length === 0) throw new CliError(ExitCode.Usage, `the value of ${name} is empty`);
        const result = await ctx.rpc('secretSet', { name, value, ...(opts.job !== undefined && { job: opts.job }) });
        if (ctx.json) ctx.printJson(result);
        else ctx.out(`secret ${result.name} ${result.created ? 'set' : 'replaced'} ${scope(result.job)}`);
        return ExitCode.Ok;
      }),
    );

  secret
    .command('list')
    .description('the secrets there are (names and scopes, never values)')
    .action((_opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const list = await ctx.rpc('secretList', {});
        if (ctx.json) ctx.printJson(list);
        else if (list.length === 0) ctx.out('no secrets');
        else for (const s of list) ctx.out(`${s.name}\t${scope(s.job)}\t${new Date(s.updatedAt).toISOString()}`);
        return ExitCode.Ok;
      }),
    );

  secret
    .command('rm')
    .description('delete a secret')
    .argument('<name>')
    .option('--job <job>', "the job's own secret (without: the one for all jobs)")
    .action((name: string, opts: { job?: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const result = await ctx.rpc('secretRemove', { name, ...(opts.job !== undefined && { job: opts.job }) });
        if (ctx.json) ctx.printJson(result);
        else ctx.out(`secret ${result.name} removed ${scope(result.job)}`);
        return ExitCode.Ok;
      }),
    );
}

const scope = (job: string | null) => (job === null ? 'for all jobs' : `for job ${job}`);

async function readValueFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(ExitCode.Usage, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
}

async function readStdin(ctx: Context, name: string): Promise<string> {
  const stdin = ctx.io.stdin ?? process.stdin;
  if ((stdin as { isTTY?: boolean }).isTTY) ctx.note(`value of ${name} (end with Ctrl-D):`);
  let text = '';
  for await (const chunk of stdin) text += String(chunk);
  return text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
}
