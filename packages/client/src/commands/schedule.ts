import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import type { JobSpecInput, JobView, MethodParamsInput } from '@builder/protocol';
import type { Context } from '../cli/context.ts';
import {
  collectList,
  collectParam,
  intOption,
  parseDateTime,
  PERIODS,
  scheduleFrom,
  secondsOption,
  type Period,
} from '../cli/options.ts';
import { CliError } from '../errors.ts';
import { ExitCode } from '../exit.ts';
import { formatInZone } from '../format.ts';
import type { Runner } from '../program.ts';
import { defaultTemplatesDir, expandTemplate, platformsWithTemplate } from '../template/expand.ts';
import { TemplateError } from '../template/render.ts';

interface ScheduleOptions {
  platform: string[];
  script?: string;
  prepare?: string;
  template?: string;
  var?: Record<string, string>;
  templatesDir?: string;
  cron?: string;
  period?: Period;
  tz?: string;
  timeout?: number;
  killGrace?: number;
  retries?: number;
  retryBackoff?: number;
  concurrency?: number;
  missed?: 'skip' | 'once';
  param?: Record<string, string>;
  alertWebhook?: string[];
  secret?: string[];
  sourceGit?: string;
  sourceRef?: string;
  after?: string;
}

interface RescheduleOptions {
  cron?: string;
  period?: Period;
  tz?: string;
}

const cronOption = (): Option =>
  new Option('--cron <expr>', 'cron expression (5 or 6 fields) or preset such as @daily');
const periodOption = (): Option =>
  new Option('--period <period>', 'robur-style period (never: on demand only)').choices(PERIODS).conflicts('cron');

export function registerScheduleCommands(program: Command, run: Runner): void {
  program
    .command('schedule')
    .description('create or replace a job; without --cron/--period it runs only on demand')
    .argument('<name>', 'job name')
    .requiredOption(
      '--platform <platform>',
      'platform to run on; repeat or comma-separate for several; with --template, "all": every platform the server knows a worker of that the template has a file for',
      collectList,
    )
    .addOption(new Option('--script <file>', 'shell script the job runs (or --template)').conflicts('template'))
    .option(
      '--prepare <file>',
      'run this script first, in the same sandbox, as root with network (build dependencies); the script then runs unprivileged without network',
    )
    .option('--template <name>', 'render template NAME once per platform (see templates/README.md)')
    .option('--var <key=value>', 'template variable for {{KEY}}; repeatable', collectParam)
    .addOption(
      new Option('--templates-dir <dir>', "where --template looks (default: the repository's templates/)").env(
        'BUILDER_TEMPLATES_DIR',
      ),
    )
    .addOption(cronOption())
    .addOption(periodOption())
    .option('--tz <zone>', 'IANA time zone of the schedule (default UTC)')
    .option('--timeout <secs>', 'kill the run after this long (default 3600)', secondsOption(1, 7 * 24 * 3600))
    .option('--kill-grace <secs>', 'between SIGTERM and SIGKILL (default 10)', secondsOption(0, 3600))
    .option('--retries <n>', 'retry a failed attempt this often (default 0)', intOption(0, 100))
    .option('--retry-backoff <secs>', 'wait before a retry (default 10)', secondsOption(0, 24 * 3600))
    .option('--concurrency <n>', 'runs of this job at once per platform (default 1)', intOption(1, 1000))
    .addOption(
      new Option('--missed <policy>', 'runs missed while the server was down (default once)').choices(['skip', 'once']),
    )
    .option('--param <key=value>', 'job parameter (environment variable); repeatable', collectParam)
    .option(
      '--alert-webhook <url>',
      "POST this job's alerts (failure, recovery, lost, missed) here too; repeatable",
      (url: string, previous: string[] = []) => [...previous, url],
    )
    .option(
      '--secret <name>',
      'give the job this secret (set with `secret set NAME`) as an environment variable; repeatable',
      (name: string, previous: string[] = []) => [...previous, name],
    )
    .option('--source-git <url>', 'check out this git repository (URL or path) for each run, at $BUILDER_SOURCE')
    .option('--source-ref <ref>', 'the branch, tag or commit of --source-git to build (default HEAD)')
    .option('--after <job>', "run after each success of this job on a platform, with that run's artifacts as inputs")
    .action((name: string, opts: ScheduleOptions, cmd: Command) => run(cmd, (ctx) => schedule(ctx, name, opts)));

  program
    .command('unschedule')
    .description('remove a job and cancel its queued runs')
    .argument('<name>', 'job name')
    .action((name: string, _opts: unknown, cmd: Command) => run(cmd, (ctx) => unschedule(ctx, name)));

  program
    .command('reschedule')
    .description('move the next run of a job and/or change its schedule')
    .argument('<name>', 'job name')
    .argument('[next]', 'ISO 8601 date-time of the next run, e.g. 2025-01-31T02:00:00Z')
    .addOption(cronOption())
    .addOption(periodOption())
    .option('--tz <zone>', 'IANA time zone of the schedule')
    .action((name: string, next: string | undefined, opts: RescheduleOptions, cmd: Command) =>
      run(cmd, (ctx) => reschedule(ctx, name, next, opts)),
    );
}

async function readScript(file: string, what = 'script'): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : (error as Error).message;
    throw new CliError(ExitCode.Usage, `cannot read ${what} ${file}: ${why}`);
  }
}

function templateText(job: JobView): string {
  return job.template === null ? '' : ` from template ${job.template.name}`;
}

function nextRunText(job: JobView): string {
  return job.nextRunAt === null ? 'on demand' : formatInZone(job.nextRunAt, job.timezone);
}

/** The job's script, or its scripts rendered per platform from a template (client-side: the server stays thin). */
async function jobScripts(
  opts: ScheduleOptions,
): Promise<Pick<JobSpecInput, 'script' | 'scripts' | 'template' | 'prepare' | 'prepares'>> {
  const prepare = opts.prepare === undefined ? undefined : await readScript(opts.prepare, 'prepare script');
  if (prepare?.length === 0) throw new CliError(ExitCode.Usage, `prepare script ${opts.prepare} is empty`);
  // --prepare stands in for a template's own prepare part
  const own = prepare === undefined ? {} : { prepare };
  if (opts.platform.includes('all') && opts.template === undefined) {
    throw new CliError(ExitCode.Usage, '--platform all needs --template NAME');
  }
  if (opts.template === undefined) {
    // (--templates-dir alone is fine: it may come from BUILDER_TEMPLATES_DIR)
    if (opts.var !== undefined) throw new CliError(ExitCode.Usage, '--var needs --template NAME');
    if (opts.script === undefined) throw new CliError(ExitCode.Usage, 'give --script FILE or --template NAME');
    const script = await readScript(opts.script);
    if (script.length === 0) throw new CliError(ExitCode.Usage, `script ${opts.script} is empty`);
    return { script, ...own };
  }
  const vars = opts.var ?? {};
  try {
    const { scripts, prepares } = await expandTemplate({
      dir: opts.templatesDir ?? defaultTemplatesDir(),
      name: opts.template,
      platforms: opts.platform,
      vars,
    });
    const prepareParts = prepare !== undefined ? own : Object.keys(prepares).length > 0 ? { prepares } : {};
    return { scripts, template: { name: opts.template, vars }, ...prepareParts };
  } catch (error) {
    if (error instanceof TemplateError) throw new CliError(ExitCode.Usage, error.message);
    throw error;
  }
}

/** `--platform all` with a template: the platforms of the server's workers that the template covers. */
async function resolvePlatforms(ctx: Context, opts: ScheduleOptions): Promise<string[]> {
  if (!opts.platform.includes('all') || opts.template === undefined) return opts.platform;
  const known = [...new Set((await ctx.rpc('workers', {})).map((w) => w.platform))].sort();
  const dir = opts.templatesDir ?? defaultTemplatesDir();
  let covered: string[];
  try {
    covered = await platformsWithTemplate(dir, opts.template, known);
  } catch (error) {
    if (error instanceof TemplateError) throw new CliError(ExitCode.Usage, error.message);
    throw error;
  }
  if (covered.length === 0) {
    throw new CliError(
      ExitCode.Usage,
      `template ${opts.template} has a file for none of the known platforms (${known.join(', ') || 'no worker has connected yet'})`,
    );
  }
  return [...new Set([...opts.platform.filter((p) => p !== 'all'), ...covered])];
}

async function schedule(ctx: Context, name: string, opts: ScheduleOptions): Promise<number> {
  opts = { ...opts, platform: await resolvePlatforms(ctx, opts) };
  if (opts.sourceRef !== undefined && opts.sourceGit === undefined) {
    throw new CliError(ExitCode.Usage, '--source-ref needs --source-git URL');
  }
  const spec: JobSpecInput = {
    name,
    platforms: opts.platform,
    ...(await jobScripts(opts)),
    schedule: scheduleFrom(opts) ?? null,
    ...(opts.tz !== undefined && { timezone: opts.tz }),
    ...(opts.missed !== undefined && { missed: opts.missed }),
    ...(opts.timeout !== undefined && { timeoutSec: opts.timeout }),
    ...(opts.killGrace !== undefined && { killGraceSec: opts.killGrace }),
    ...(opts.retries !== undefined && { retries: opts.retries }),
    ...(opts.retryBackoff !== undefined && { retryBackoffSec: opts.retryBackoff }),
    ...(opts.concurrency !== undefined && { concurrency: opts.concurrency }),
    ...(opts.param !== undefined && { params: opts.param }),
    ...(opts.alertWebhook !== undefined && { alertWebhooks: opts.alertWebhook }),
    ...(opts.secret !== undefined && { secrets: opts.secret }),
    ...(opts.after !== undefined && { after: opts.after }),
    ...(opts.sourceGit !== undefined && {
      source: { git: opts.sourceGit, ...(opts.sourceRef !== undefined && { ref: opts.sourceRef }) },
    }),
  };
  const result = await ctx.rpc('schedule', spec);
  if (ctx.json) ctx.printJson(result);
  else
    ctx.out(
      `scheduled ${result.job.name}${templateText(result.job)} (${result.created ? 'created' : 'updated'}), next run: ${nextRunText(result.job)}`,
    );
  return ExitCode.Ok;
}

async function unschedule(ctx: Context, name: string): Promise<number> {
  const result = await ctx.rpc('unschedule', { name });
  if (ctx.json) ctx.printJson(result);
  else
    ctx.out(`unscheduled ${result.name}${result.cancelled > 0 ? `, cancelled ${result.cancelled} queued run(s)` : ''}`);
  return ExitCode.Ok;
}

async function reschedule(
  ctx: Context,
  name: string,
  nextText: string | undefined,
  opts: RescheduleOptions,
): Promise<number> {
  const params: MethodParamsInput<'reschedule'> = { name };
  if (nextText !== undefined) {
    const next = parseDateTime(nextText);
    if (next === undefined) {
      throw new CliError(
        ExitCode.Usage,
        `invalid date-time ${JSON.stringify(nextText)}: expected ISO 8601 such as 2025-01-31T02:00:00Z`,
      );
    }
    params.next = next;
  }
  const scheduleExpr = scheduleFrom(opts);
  if (scheduleExpr !== undefined) params.schedule = scheduleExpr;
  if (opts.tz !== undefined) params.timezone = opts.tz;
  const job = await ctx.rpc('reschedule', params);
  if (ctx.json) ctx.printJson(job);
  else ctx.out(`rescheduled ${job.name} (${job.schedule ?? 'on demand'}), next run: ${nextRunText(job)}`);
  return ExitCode.Ok;
}
