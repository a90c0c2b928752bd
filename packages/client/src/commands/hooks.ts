import type { Command } from 'commander';
import type { Context } from '../cli/context.ts';
import { CliError } from '../errors.ts';
import { ExitCode } from '../exit.ts';
import type { Runner } from '../program.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * `hook set|list|rm`: a job's push hook (`POST /hooks/JOB`), the secret forges sign deliveries
 * with and the branches pushes to which queue runs.
 */
export function registerHookCommands(program: Command, run: Runner): void {
  const hook = program
    .command('hook')
    .description('push hooks: forges (or contrib/post-receive) queue a run of each pushed commit at /hooks/JOB');

  hook
    .command('set')
    .description('give a job a push hook; prints the secret the server made, once (or reads one with --secret-stdin)')
    .argument('<job>')
    .option(
      '--branch <name>',
      "build pushes to this branch (a name or pattern with *); repeatable; default: the job's source ref",
      collect,
    )
    .option('--secret-stdin', 'use the secret read from standard input (16 characters or more) instead of a new one')
    .action((job: string, opts: { branch?: string[]; secretStdin?: boolean }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const secret = opts.secretStdin === true ? await readSecret(ctx) : undefined;
        const result = await ctx.rpc('hookSet', {
          job,
          ...(secret !== undefined && { secret }),
          ...(opts.branch !== undefined && { branches: opts.branch }),
        });
        if (ctx.json) {
          ctx.printJson(result);
          return ExitCode.Ok;
        }
        const branches = result.branches === null ? "the job's source ref" : result.branches.join(', ');
        ctx.note(
          `push hook of job ${result.job} ${result.created ? 'set' : 'replaced'}: pushes to ${branches} queue runs`,
        );
        ctx.note(`URL: ${new URL(`/hooks/${encodeURIComponent(result.job)}`, ctx.globals.remote).href}`);
        if (result.secret !== null) {
          ctx.note('secret (shown this once; give it to the forge as the webhook secret):');
          ctx.out(result.secret);
        }
        return ExitCode.Ok;
      }),
    );

  hook
    .command('list')
    .description('jobs with a push hook and the branches they build (never the secrets)')
    .action((_opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const list = await ctx.rpc('hookList', {});
        if (ctx.json) ctx.printJson(list);
        else if (list.length === 0) ctx.out('no push hooks');
        else
          for (const h of list) {
            ctx.out(`${h.job}\t${h.branches?.join(',') ?? '(source ref)'}\t${new Date(h.updatedAt).toISOString()}`);
          }
        return ExitCode.Ok;
      }),
    );

  hook
    .command('rm')
    .description("remove a job's push hook: its deliveries are refused from now on")
    .argument('<job>')
    .action((job: string, _opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const result = await ctx.rpc('hookRemove', { job });
        if (ctx.json) ctx.printJson(result);
        else ctx.out(`push hook of job ${result.job} removed`);
        return ExitCode.Ok;
      }),
    );
}

async function readSecret(ctx: Context): Promise<string> {
  const stdin = ctx.io.stdin ?? process.stdin;
  let text = '';
  for await (const chunk of stdin) text += String(chunk);
  const secret = text.replace(/\r?\n$/, '');
  if (secret.length < 16)
    throw new CliError(ExitCode.Usage, 'the hook secret read from stdin has fewer than 16 characters');
  return secret;
}
