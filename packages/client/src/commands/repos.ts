import type { Command } from 'commander';
import type { RepoView } from '@builder/protocol';
import type { Context } from '../cli/context.ts';
import { CliError } from '../errors.ts';
import { ExitCode } from '../exit.ts';
import type { Runner } from '../program.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `repo create|list|show|rm`: apt (and FreeBSD pkg) repositories made of jobs' packages. */
export function registerRepoCommands(program: Command, run: Runner): void {
  const repo = program
    .command('repo')
    .description("package repositories: apt (and FreeBSD pkg) indices of jobs' .deb/.pkg files, at /repo/NAME");

  repo
    .command('create')
    .description('create (or replace the settings of) a repository fed by the succeeded runs of some jobs')
    .argument('<name>')
    .requiredOption('--suite <suite>', 'the suite apt is given, e.g. bookworm')
    .requiredOption(
      '--job <job[:platform]>',
      'a job whose package files it carries (on one platform); repeatable',
      collect,
    )
    .option('--component <component>', 'the component', 'main')
    .option('--keep <n>', 'versions of each package kept, so an older one can be pinned', '3')
    .action((name: string, opts: { suite: string; job: string[]; component: string; keep: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const keep = Number(opts.keep);
        if (!Number.isInteger(keep) || keep < 1 || keep > 100) {
          throw new CliError(ExitCode.Usage, `--keep takes a whole number from 1 to 100, not ${opts.keep}`);
        }
        const jobs = opts.job.map((j) => {
          const i = j.indexOf(':');
          return i < 0 ? { job: j } : { job: j.slice(0, i), platform: j.slice(i + 1) };
        });
        const result = await ctx.rpc('repoCreate', {
          name,
          suite: opts.suite,
          component: opts.component,
          keep,
          jobs,
        });
        if (ctx.json) ctx.printJson(result);
        else {
          ctx.out(`repository ${result.repo.name} ${result.created ? 'created' : 'changed'}`);
          printRepo(ctx, result.repo);
        }
        return ExitCode.Ok;
      }),
    );

  repo
    .command('list')
    .description('the repositories, their suites and jobs')
    .action((_opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const list = await ctx.rpc('repoList', {});
        if (ctx.json) ctx.printJson(list);
        else if (list.length === 0) ctx.out('no repositories');
        else
          for (const r of list) {
            ctx.out(`${r.name}\t${r.suite}\t${jobsText(r)}\t${r.packages.length} packages`);
          }
        return ExitCode.Ok;
      }),
    );

  repo
    .command('show')
    .description('a repository: the sources.list line, its packages and the runs that built them, files refused')
    .argument('<name>')
    .action((name: string, _opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const r = await ctx.rpc('repoShow', { name });
        if (ctx.json) ctx.printJson(r);
        else printRepo(ctx, r);
        return ExitCode.Ok;
      }),
    );

  repo
    .command('rm')
    .description('remove a repository: its indices are no longer served (the runs and their files stay)')
    .argument('<name>')
    .action((name: string, _opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const result = await ctx.rpc('repoRemove', { name });
        if (ctx.json) ctx.printJson(result);
        else ctx.out(`repository ${result.name} removed`);
        return ExitCode.Ok;
      }),
    );
}

function jobsText(r: RepoView): string {
  return r.jobs.map((j) => (j.platform === null ? j.job : `${j.job}:${j.platform}`)).join(',');
}

function printRepo(ctx: Context, r: RepoView): void {
  const url = new URL(`/repo/${encodeURIComponent(r.name)}`, ctx.globals.remote).href;
  ctx.out(`name        ${r.name}`);
  ctx.out(`suite       ${r.suite} (component ${r.component}, keeps ${r.keep} versions of each package)`);
  ctx.out(`jobs        ${jobsText(r)}`);
  ctx.out(`apt         deb [signed-by=/etc/apt/keyrings/builder.gpg] ${url} ${r.suite} ${r.component}`);
  ctx.out(`key         ${new URL('/repo/key.gpg', ctx.globals.remote).href}`);
  ctx.out(
    `published   ${r.generation === null ? 'not yet' : `generation ${r.generation}, ${new Date(r.publishedAt ?? 0).toISOString()}`}`,
  );
  for (const p of r.packages) ctx.out(`  ${p.name}\t${p.version}\t${p.arch}\t${p.job}#${p.number}\t${p.filename}`);
  for (const f of r.refused) ctx.out(`  refused ${f.job}#${f.number} ${f.path}: ${f.problem}`);
}
