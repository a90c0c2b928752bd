import { Option, type Command } from 'commander';
import type { JobSpecInput, JobView } from '@builder/protocol';
import type { Context } from '../cli/context.ts';
import { CliError, ServerError } from '../errors.ts';
import { ExitCode } from '../exit.ts';
import { definitionOf } from '../jobfile/git.ts';
import { describeChange, diffJob, type Change } from '../jobfile/diff.ts';
import { loadJobFile } from '../jobfile/load.ts';
import { orderByAfter } from '../jobfile/after.ts';
import { JobFileError } from '../jobfile/parse.ts';
import type { Runner } from '../program.ts';
import { defaultTemplatesDir } from '../template/expand.ts';

interface ApplyOptions {
  prune?: boolean;
  dryRun?: boolean;
  templatesDir?: string;
}

export function registerApplyCommand(program: Command, run: Runner): void {
  program
    .command('apply')
    .description('create or change jobs to match job files (one job per YAML file; see schemas/job.schema.json)')
    .argument('<files...>', 'job files')
    .option('--prune', 'unschedule jobs applied from a file that is not among these (never jobs made with schedule)')
    .option('--dry-run', 'print what would change and change nothing')
    .addOption(
      new Option('--templates-dir <dir>', "where template: looks (default: the repository's templates/)").env(
        'BUILDER_TEMPLATES_DIR',
      ),
    )
    .action((files: string[], opts: ApplyOptions, cmd: Command) => run(cmd, (ctx) => apply(ctx, files, opts)));
}

interface Loaded {
  file: string;
  spec: JobSpecInput;
}

/** Every file is read and checked before the server is asked anything: one bad file changes nothing. */
async function loadAll(ctx: Context, files: string[], opts: ApplyOptions): Promise<Loaded[]> {
  const problems: string[] = [];
  const loaded: Loaded[] = [];
  const byName = new Map<string, string>();
  for (const file of files) {
    try {
      const spec = await loadJobFile(file, { templatesDir: opts.templatesDir ?? defaultTemplatesDir() });
      const other = byName.get(spec.name);
      if (other !== undefined) {
        problems.push(`${file}: job ${spec.name} is also defined in ${other}`);
        continue;
      }
      byName.set(spec.name, file);
      loaded.push({ file, spec: { ...spec, definition: await definitionOf(file) } });
    } catch (error) {
      if (!(error instanceof JobFileError)) throw error;
      problems.push(...error.problems);
    }
  }
  if (problems.length > 0) {
    for (const p of problems) ctx.warn(p);
    const n = problems.length;
    throw new CliError(ExitCode.Usage, `${n} problem${n === 1 ? '' : 's'} in job files; nothing was changed`);
  }
  return loaded;
}

async function apply(ctx: Context, files: string[], opts: ApplyOptions): Promise<number> {
  const loaded = await loadAll(ctx, files, opts);
  const conn = await ctx.connect();
  try {
    const live = new Map<string, JobView>();
    for (const j of await conn.call('jobs', {})) live.set(j.name, j);
    const chained = orderByAfter(
      loaded.map((l) => ({ ...l, name: l.spec.name, after: l.spec.after ?? null })),
      new Map([...live.values()].map((j) => [j.name, j.after])),
    );
    if (chained.problems.length > 0) {
      for (const p of chained.problems) ctx.warn(p);
      const n = chained.problems.length;
      throw new CliError(ExitCode.Usage, `${n} problem${n === 1 ? '' : 's'} in job files; nothing was changed`);
    }
    const plan: { change: Change; spec?: JobSpecInput }[] = [];
    for (const { file, spec } of chained.ordered) {
      const current = live.has(spec.name) ? (await conn.call('job', { name: spec.name })).job : undefined;
      plan.push({ change: diffJob(spec, file, current), spec });
    }
    if (opts.prune) {
      const named = new Set(loaded.map((l) => l.spec.name));
      for (const j of live.values()) {
        if (j.definition !== null && !named.has(j.name)) plan.push({ change: { kind: 'unschedule', name: j.name } });
      }
    }
    if (ctx.json) ctx.printJson({ dryRun: opts.dryRun === true, changes: plan.map((p) => p.change) });
    else for (const { change } of plan) for (const line of describeChange(change)) ctx.out(line);
    if (opts.dryRun) {
      if (!ctx.json) ctx.note('dry run: nothing was changed');
      return ExitCode.Ok;
    }
    for (const { change, spec } of plan) {
      try {
        if (change.kind === 'unschedule') await conn.call('unschedule', { name: change.name });
        else if ((change.kind !== 'unchanged' || change.refresh) && spec !== undefined)
          await conn.call('schedule', spec);
      } catch (error) {
        if (!(error instanceof ServerError)) throw error;
        const where = change.kind === 'unschedule' ? change.name : `${change.name} (${change.file})`;
        throw new ServerError(error.code, `applying ${where}: ${error.message}; jobs before it were applied`);
      }
    }
    const counts = countKinds(plan.map((p) => p.change));
    if (!ctx.json) ctx.note(`applied: ${counts}`);
    return ExitCode.Ok;
  } finally {
    await conn.close();
  }
}

function countKinds(changes: Change[]): string {
  const n = (k: Change['kind']) => changes.filter((c) => c.kind === k).length;
  return `${n('create')} created, ${n('change')} changed, ${n('unchanged')} unchanged, ${n('unschedule')} unscheduled`;
}
