import type { Command } from 'commander';
import { ComparisonSchema, httpBase, type Comparison } from '@builder/protocol';
import type { Context } from '../cli/context.ts';
import { CliError } from '../errors.ts';
import { ExitCode } from '../exit.ts';
import { getSite } from '../http-json.ts';
import type { Runner } from '../program.ts';

export function registerCompareCommand(program: Command, run: Runner): void {
  program
    .command('compare')
    .description('what differs between two runs of a job: parameters, commit, script, base packages, files')
    .argument('<job>', 'job name')
    .argument('<a>', 'run number')
    .argument('<b>', 'run number')
    .action((job: string, a: string, b: string, _opts: unknown, cmd: Command) =>
      run(cmd, (ctx) => compare(ctx, job, number(a), number(b))),
    );
}

function number(text: string): number {
  const n = /^#?([1-9]\d{0,8})$/.exec(text)?.[1];
  if (n === undefined) throw new CliError(ExitCode.Usage, `a run number is expected, not "${text}"`);
  return Number(n);
}

async function compare(ctx: Context, job: string, a: number, b: number): Promise<number> {
  const url = `${httpBase(ctx.globals.remote)}/api/job/${encodeURIComponent(job)}/compare/${a}/${b}`;
  const parsed = ComparisonSchema.safeParse(await getSite(url, 'json'));
  if (!parsed.success) throw new CliError(ExitCode.RunFailed, `${url} did not answer a comparison`);
  const c = parsed.data;
  if (ctx.json) ctx.printJson(c);
  else for (const line of compareLines(c)) ctx.out(line);
  return ExitCode.Ok;
}

export function compareLines(c: Comparison): string[] {
  const d = c.artifacts;
  const lines = [
    `${c.job} #${c.a.number} vs #${c.b.number}: ${
      c.reproducible
        ? `reproducible (the same ${d.same.length} file${d.same.length === 1 ? '' : 's'})`
        : `not the same files (${d.changed.length} changed, ${d.added.length} added, ${d.removed.length} removed, ${d.same.length} the same)`
    }`,
    `commit     ${c.commit.same ? `same ${c.a.commit ?? '(none)'}` : `${c.a.commit ?? '(none)'} → ${c.b.commit ?? '(none)'}`}`,
    `script     ${c.script.same ? 'same' : 'differs'}`,
    `params     ${c.params.same ? 'same' : c.params.changed.map((p) => `${p.name}: ${p.a ?? '(unset)'} → ${p.b ?? '(unset)'}`).join(', ')}`,
    `inputs     ${c.inputs.same ? 'same' : c.inputs.changed.map((i) => `${i.name}: ${short(i.a)} → ${short(i.b)}`).join(', ')}`,
    `workers    ${c.a.worker ?? '-'} / ${c.b.worker ?? '-'}`,
    `base       ${c.a.base ?? '-'} / ${c.b.base ?? '-'}`,
  ];
  const e = c.environment;
  if (!e.known) lines.push('packages   not known for both runs');
  else if (e.same) lines.push('packages   same');
  else {
    lines.push('packages');
    for (const p of e.changed) lines.push(`  changed  ${p.name} (${p.arch}) ${p.a} → ${p.b}`);
    for (const p of e.added) lines.push(`  added    ${p.name} ${p.version} (${p.arch})`);
    for (const p of e.removed) lines.push(`  removed  ${p.name} ${p.version} (${p.arch})`);
  }
  lines.push('artifacts');
  for (const f of d.same) lines.push(`  same     ${f.path} ${f.sha256}`);
  for (const f of d.changed) lines.push(`  changed  ${f.path} ${f.a.sha256} → ${f.b.sha256}`);
  for (const f of d.added) lines.push(`  added    ${f.path} ${f.sha256}`);
  for (const f of d.removed) lines.push(`  removed  ${f.path} ${f.sha256}`);
  return lines;
}

/** A SHA-256 as people compare them by eye; `(none)` when the run had no such input. */
function short(sha: string | null): string {
  return sha === null ? '(none)' : sha.slice(0, 12);
}
