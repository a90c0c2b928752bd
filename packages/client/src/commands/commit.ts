import { execFileSync } from 'node:child_process';
import type { Command } from 'commander';
import { formatDuration, type MethodParamsInput, type MethodResult, type RunView } from '@builder/protocol';
import { Backoff, sleep } from '../backoff.ts';
import { Outage } from '../outage.ts';
import type { Context } from '../cli/context.ts';
import { secondsOption } from '../cli/options.ts';
import type { Connection } from '../connection.ts';
import { CliError, isRetryable } from '../errors.ts';
import { ExitCode } from '../exit.ts';
import type { Runner } from '../program.ts';
import { renderRuns } from '../render.ts';

/**
 * A commit as the server knows it: the full SHA of HEAD, a branch or a short SHA resolved in the
 * git checkout around `cwd`, or (outside one) a hex SHA or prefix as given.
 */
export function resolveCommit(spec: string, cwd: string): string {
  if (/^[0-9a-f]{40}([0-9a-f]{24})?$/i.test(spec)) return spec.toLowerCase();
  let why: string;
  try {
    return execFileSync('git', ['rev-parse', '--verify', '--quiet', '--end-of-options', `${spec}^{commit}`], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    why = stderr === '' ? `git does not know ${spec} here` : stderr.split('\n')[0]!;
  }
  if (/^[0-9a-f]{4,39}$/i.test(spec)) return spec.toLowerCase();
  throw new CliError(ExitCode.Usage, `cannot resolve ${spec} to a commit (${why}); give a SHA or run in the checkout`);
}

/** The newest run per platform: the run of that commit each platform has to show. */
export function newestPerPlatform(runs: readonly RunView[]): RunView[] {
  const seen = new Map<string, RunView>();
  for (const r of runs) {
    const prev = seen.get(r.platform);
    if (!prev || r.queuedAt > prev.queuedAt || (r.queuedAt === prev.queuedAt && r.number > prev.number))
      seen.set(r.platform, r);
  }
  return [...seen.values()].sort((a, b) => a.platform.localeCompare(b.platform));
}

/**
 * Call `fn` on a connection, connecting again (with backoff) while the server cannot be reached,
 * as `watch` does; gives up after `giveUpMs` without a connection.
 */
export async function withServer<T>(ctx: Context, giveUpMs: number, fn: (conn: Connection) => Promise<T>): Promise<T> {
  const outage = new Outage(ctx, giveUpMs);
  for (;;) {
    let conn: Connection | undefined;
    try {
      conn = await ctx.connect();
      outage.over();
      return await fn(conn);
    } catch (error) {
      // a refused certificate or a proxy's refusal does not pass by itself: say it at once
      if (!isRetryable(error)) throw error;
      await outage.pause(error);
    } finally {
      await conn?.close();
    }
  }
}

/**
 * The runs of a commit, newest per platform, waiting (polling with backoff, across restarts of the
 * server) up to `giveUpMs` for the first to appear: a push may be seconds ahead of its run.
 */
export async function waitForCommitRuns(
  ctx: Context,
  params: MethodParamsInput<'commitRuns'>,
  giveUpMs: number,
): Promise<RunView[]> {
  const startedAt = ctx.now();
  const poll = new Backoff();
  let announced = false;
  const what = `commit ${params.commit.slice(0, 12)}${params.job === undefined ? '' : ` of job ${params.job}`}`;
  for (;;) {
    const runs: MethodResult<'commitRuns'> = await withServer(ctx, giveUpMs, (conn) => conn.call('commitRuns', params));
    if (runs.length > 0) return newestPerPlatform(runs);
    const left = giveUpMs - (ctx.now() - startedAt);
    if (left <= 0) {
      throw new CliError(ExitCode.NotFound, `no run of ${what} appeared within ${formatDuration(giveUpMs)}`);
    }
    if (!announced) ctx.warn(`no run of ${what} yet; waiting for one`);
    announced = true;
    await sleep(Math.min(poll.next(), left));
  }
}

interface StatusOptions {
  commit: string;
  job?: string;
  giveUp: number;
}

/** `status --commit SHA [--job J]`: every run of a commit, whatever started it. */
export function registerStatusCommand(program: Command, run: Runner): void {
  program
    .command('status')
    .description('every run of a commit (HEAD, a branch or a SHA, resolved in the current checkout)')
    .requiredOption('--commit <commit>', 'HEAD, a branch, or a (short) SHA')
    .option('--job <name>', 'only runs of this job')
    .option(
      '--give-up <secs>',
      'give up (exit 4) after being unable to reach the server this long',
      secondsOption(0, 7 * 24 * 3600),
      30,
    )
    .addHelpText('after', '\nExit status 3 when the commit has no runs.')
    .action((opts: StatusOptions, cmd: Command) =>
      run(cmd, async (ctx) => {
        const params = {
          commit: resolveCommit(opts.commit, process.cwd()),
          ...(opts.job !== undefined && { job: opts.job }),
          limit: 1000,
        };
        ctx.checkParams('commitRuns', params);
        const runs = await withServer(ctx, opts.giveUp * 1000, (conn) => conn.call('commitRuns', params));
        if (ctx.json) ctx.printJson(runs);
        else if (runs.length === 0) ctx.warn(`no runs of commit ${params.commit}`);
        else ctx.out(renderRuns(runs, ctx.now()));
        return runs.length === 0 ? ExitCode.NotFound : ExitCode.Ok;
      }),
    );
}
