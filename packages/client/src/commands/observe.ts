import type { Command } from 'commander';
import { isTerminal, type RunView } from '@builder/protocol';
import type { Context } from '../cli/context.ts';
import type { Connection } from '../connection.ts';
import { CliError } from '../errors.ts';
import { ExitCode } from '../exit.ts';
import type { Runner } from '../program.ts';
import { eventLine, exitCodeForRuns, followRun } from './follow.ts';

/** How long the console may stay quiet before `logs` (without --follow) decides the replay is done. */
const REPLAY_SETTLE_MS = 300;

export function registerObserveCommands(program: Command, run: Runner): void {
  program
    .command('observe')
    .description('print the console of a run (replayed, then live) and exit with its status')
    .argument('<run>', 'UUID, JOB/N or JOB#N')
    .addHelpText('after', '\nThe console goes to stdout; a one-line summary goes to stderr at the end.')
    .action((ref: string, _opts: unknown, cmd: Command) => run(cmd, (ctx) => observe(ctx, ref)));

  program
    .command('observe-latest')
    .description('observe the newest run (of a job, on a platform); exit 3 if there is none')
    .option('--job <name>', 'only runs of this job')
    .option('--platform <platform>', 'only runs on this platform')
    .action((opts: { job?: string; platform?: string }, cmd: Command) => run(cmd, (ctx) => observeLatest(ctx, opts)));

  program
    .command('logs')
    .description('print the console of a run')
    .argument('<run>', 'UUID, JOB/N or JOB#N')
    .option('--follow', 'keep printing until the run ends, then exit with its status like observe')
    .addHelpText(
      'after',
      `
Without --follow: prints the whole console of a finished run and exits 0; for a run still
in progress, prints what it has so far (until the console is quiet for ${REPLAY_SETTLE_MS} ms) and exits 0.`,
    )
    .action((ref: string, opts: { follow?: boolean }, cmd: Command) =>
      run(cmd, (ctx) => logs(ctx, ref, opts.follow === true)),
    );
}

async function observeOn(ctx: Context, conn: Connection, ref: string): Promise<number> {
  const run = await followRun(ctx, conn, { ref, prefix: '' });
  const exitCode = exitCodeForRuns([run]);
  if (ctx.json) ctx.printJson({ kind: 'result', run, exitCode });
  return exitCode;
}

async function observe(ctx: Context, ref: string): Promise<number> {
  ctx.checkParams('observe', { run: ref });
  const conn = await ctx.connect();
  try {
    return await observeOn(ctx, conn, ref);
  } finally {
    await conn.close();
  }
}

async function observeLatest(ctx: Context, opts: { job?: string; platform?: string }): Promise<number> {
  const params = {
    ...(opts.job !== undefined && { job: opts.job }),
    ...(opts.platform !== undefined && { platform: opts.platform }),
  };
  ctx.checkParams('latest', params);
  const conn = await ctx.connect();
  try {
    const latest = await conn.call('latest', params);
    if (!latest) {
      const what = [opts.job && `of job ${opts.job}`, opts.platform && `on platform ${opts.platform}`]
        .filter(Boolean)
        .join(' ');
      throw new CliError(ExitCode.NotFound, `no run${what ? ` ${what}` : ''} found`);
    }
    return await observeOn(ctx, conn, latest.id);
  } finally {
    await conn.close();
  }
}

async function logs(ctx: Context, ref: string, follow: boolean): Promise<number> {
  ctx.checkParams('observe', { run: ref });
  const conn = await ctx.connect();
  try {
    if (follow) {
      const run = await printConsole(ctx, conn, ref, false);
      return run === undefined ? ExitCode.Ok : exitCodeForRuns([run]);
    }
    await printConsole(ctx, conn, ref, true);
    return ExitCode.Ok;
  } finally {
    await conn.close();
  }
}

/**
 * Print the console of a run until its `end` or, with `settle`, once a run still in progress
 * has been quiet for a moment (the protocol has no "replay done" marker). Resolves with the final
 * run, or undefined when it stopped early.
 */
function printConsole(ctx: Context, conn: Connection, ref: string, settle: boolean): Promise<RunView | undefined> {
  return new Promise<RunView | undefined>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (run: RunView | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stopListening();
      resolve(run);
    };
    const stopEarly = (sub: number): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        conn.unobserve(sub).then(() => finish(undefined), reject);
      }, REPLAY_SETTLE_MS);
    };
    const stopListening = conn.onClose((error) => {
      clearTimeout(timer);
      reject(error);
    });
    conn
      .observe({ run: ref, console: true }, (event, sub) => {
        if (done) return;
        if (event.kind === 'console') {
          if (ctx.json) ctx.printJson(eventLine(sub.run.id, event));
          else ctx.write(event.data);
          if (timer) stopEarly(sub.sub);
        } else if (event.kind === 'end') {
          if (ctx.json) ctx.printJson(eventLine(sub.run.id, event));
          finish(event.run);
        }
      })
      .then((sub) => {
        if (settle && !done && !isTerminal(sub.run.state)) stopEarly(sub.sub);
      })
      .catch((error: unknown) => {
        clearTimeout(timer);
        stopListening();
        reject(error as Error);
      });
  });
}
