import type { Command } from 'commander';
import { formatDuration, isTerminal, type MethodParamsInput, type RunView } from '@builder/protocol';
import { Backoff, sleep } from '../backoff.ts';
import { Outage } from '../outage.ts';
import type { Context } from '../cli/context.ts';
import { collectParam, secondsOption } from '../cli/options.ts';
import type { Connection } from '../connection.ts';
import { CliError, ConnectionError, isRetryable } from '../errors.ts';
import { ExitCode } from '../exit.ts';
import { formatRunState, runLabel } from '../format.ts';
import type { Runner } from '../program.ts';
import { resolveCommit, waitForCommitRuns } from './commit.ts';
import { eventLine, exitCodeForRuns } from './follow.ts';

interface WatchOptions {
  job?: string;
  commit?: string;
  param?: Record<string, string>;
  platform?: string;
  giveUp: number;
  logs?: boolean;
}

export function registerWatchCommand(program: Command, run: Runner): void {
  program
    .command('watch')
    .description('follow a run until it ends, printing its state changes; exit with its status')
    .argument('[run]', 'UUID, JOB/N or JOB#N')
    .option('--job <name>', 'watch the newest run of this job (waiting for one to appear)')
    .option('--commit <commit>', 'the runs of this commit: HEAD, a branch or a (short) SHA of the current checkout')
    .option('--param <key=value>', 'with --job: only runs with this parameter; repeatable', collectParam)
    .option('--platform <platform>', 'with --job: only runs on this platform')
    .option(
      '--give-up <secs>',
      'give up (exit 4) after being unable to reach the server this long',
      secondsOption(0, 7 * 24 * 3600),
      300,
    )
    .option('--logs', 'also print the console (state changes then go to stderr)')
    .addHelpText(
      'after',
      `
A lost connection is retried with exponential backoff and jitter (at most 5 s apart) and the
run is observed again; after --give-up seconds without a connection watch exits 4. With --job,
watch also waits up to --give-up seconds for a matching run to appear (then exit 3).
With --commit (and --job), watch waits for the run(s) of that commit (a push may be ahead of
its run), follows the newest run on each platform and exits 0 only if all of them succeeded.`,
    )
    .action((ref: string | undefined, opts: WatchOptions, cmd: Command) => run(cmd, (ctx) => watch(ctx, ref, opts)));
}

async function watch(ctx: Context, ref: string | undefined, opts: WatchOptions): Promise<number> {
  if (opts.commit !== undefined) return watchCommit(ctx, ref, opts.commit, opts);
  if ((ref === undefined) === (opts.job === undefined))
    throw new CliError(ExitCode.Usage, 'watch needs either RUN or --job NAME');
  if (ref !== undefined && (opts.param !== undefined || opts.platform !== undefined)) {
    throw new CliError(ExitCode.Usage, '--param and --platform only go with --job');
  }
  if (ref !== undefined) ctx.checkParams('observe', { run: ref });
  const latest: MethodParamsInput<'latest'> = {
    ...(opts.job !== undefined && { job: opts.job }),
    ...(opts.platform !== undefined && { platform: opts.platform }),
    ...(opts.param !== undefined && { params: opts.param }),
  };
  if (ref === undefined) ctx.checkParams('latest', latest);
  return new Watcher(ctx, ref, latest, opts).run();
}

/** `watch --commit C [--job J] [--platform P]`: every platform's run of that commit, to their ends. */
async function watchCommit(ctx: Context, ref: string | undefined, commit: string, opts: WatchOptions): Promise<number> {
  if (ref !== undefined || opts.param !== undefined) {
    throw new CliError(ExitCode.Usage, '--commit goes with --job and --platform, not with a RUN or --param');
  }
  const params = {
    commit: resolveCommit(commit, process.cwd()),
    ...(opts.job !== undefined && { job: opts.job }),
  };
  ctx.checkParams('commitRuns', params);
  let runs = await waitForCommitRuns(ctx, params, opts.giveUp * 1000);
  if (opts.platform !== undefined) runs = runs.filter((r) => r.platform === opts.platform);
  if (runs.length === 0) {
    throw new CliError(ExitCode.NotFound, `commit ${params.commit} has no run on platform ${opts.platform ?? '?'}`);
  }
  if (!ctx.json) ctx.note(`commit ${params.commit}: ${runs.map((r) => `${runLabel(r)} (${r.platform})`).join(', ')}`);
  const codes = await Promise.all(runs.map((r) => new Watcher(ctx, r.id, {}, opts).run()));
  return Math.max(...codes);
}

/** The state of one `watch`: which run, what was printed, how long the server has been away. */
class Watcher {
  readonly #ctx: Context;
  readonly #latest: MethodParamsInput<'latest'>;
  readonly #giveUpMs: number;
  readonly #logs: boolean;
  readonly #outage: Outage;
  readonly #startedAt: number;
  #runId: string | undefined;
  /** Console characters already printed, so a replay after a reconnect is not printed twice. */
  #printed = 0;
  #lastReported = '';

  constructor(ctx: Context, ref: string | undefined, latest: MethodParamsInput<'latest'>, opts: WatchOptions) {
    this.#ctx = ctx;
    this.#runId = ref;
    this.#latest = latest;
    this.#giveUpMs = opts.giveUp * 1000;
    this.#outage = new Outage(ctx, this.#giveUpMs);
    this.#logs = opts.logs === true;
    this.#startedAt = ctx.now();
  }

  async run(): Promise<number> {
    for (;;) {
      let conn: Connection;
      try {
        conn = await this.#ctx.connect();
      } catch (error) {
        if (!isRetryable(error)) throw error;
        await this.#outage.pause(error);
        continue;
      }
      this.#outage.over();
      try {
        return await this.#watchOn(conn);
      } catch (error) {
        if (!isRetryable(error)) throw error;
        await this.#outage.pause(error);
      } finally {
        await conn.close();
      }
    }
  }

  /** Resolves with the exit code once the run ends; rejects with ConnectionError if the connection drops. */
  async #watchOn(conn: Connection): Promise<number> {
    const runId = this.#runId ?? (await this.#findRun(conn));
    this.#runId = runId;
    return new Promise<number>((resolve, reject) => {
      let seen = 0;
      let started = false;
      let done = false;
      const stopListening = conn.onClose(reject);
      const begin = (run: RunView): void => {
        if (started) return;
        started = true;
        this.#outage.over();
        this.#report(run);
      };
      const finish = (run: RunView): void => {
        if (done) return;
        done = true;
        stopListening();
        this.#report(run);
        const exitCode = exitCodeForRuns([run]);
        if (this.#ctx.json) this.#ctx.printJson({ kind: 'result', run, exitCode });
        resolve(exitCode);
      };
      conn
        .observe({ run: runId, console: this.#logs }, (event, sub) => {
          begin(sub.run);
          if (event.kind === 'console') {
            this.#console(sub.run.id, event.data, seen);
            seen += event.data.length;
          } else if (event.kind === 'state') {
            this.#report(event.run);
          } else {
            finish(event.run);
          }
        })
        .then((sub) => {
          begin(sub.run);
          // without the console there is nothing more to wait for
          if (!this.#logs && isTerminal(sub.run.state)) finish(sub.run);
        })
        .catch((error: unknown) => {
          stopListening();
          reject(error as Error);
        });
    });
  }

  /** The newest run matching --job/--platform/--param; polls (with backoff) until one exists. */
  async #findRun(conn: Connection): Promise<string> {
    const poll = new Backoff();
    let announced = false;
    for (;;) {
      const run = await conn.call('latest', this.#latest);
      if (run) return run.id;
      const left = this.#giveUpMs - (this.#ctx.now() - this.#startedAt);
      if (left <= 0) {
        throw new CliError(
          ExitCode.NotFound,
          `no run of job ${this.#latest.job ?? '?'} appeared within ${formatDuration(this.#giveUpMs)}`,
        );
      }
      if (!announced) this.#ctx.warn(`no run of job ${this.#latest.job ?? '?'} yet; waiting for one`);
      announced = true;
      await sleep(Math.min(poll.next(), left));
    }
  }

  #console(runId: string, data: string, seenBefore: number): void {
    const skip = Math.max(0, this.#printed - seenBefore);
    if (skip >= data.length) return;
    const text = data.slice(skip);
    this.#printed += text.length;
    if (this.#ctx.json) this.#ctx.printJson(eventLine(runId, { kind: 'console', data: text }));
    else this.#ctx.write(text);
  }

  /** One line per change of state, worker, attempt or waiting reason. */
  #report(run: RunView): void {
    const key = [run.state, run.worker, run.attempt, run.waiting].join('|');
    if (key === this.#lastReported) return;
    this.#lastReported = key;
    if (this.#ctx.json) this.#ctx.printJson(eventLine(run.id, { kind: 'state', run }));
    else if (this.#logs) this.#ctx.note(`${runLabel(run)}: ${formatRunState(run)}`);
    else this.#ctx.out(`${runLabel(run)}: ${formatRunState(run)}`);
  }
}
