import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { hashFile } from '@builder/protocol/transfer';
import { httpBase, parseRunRef, verifyEnvelope, type Statement } from '@builder/protocol';
import type { Context } from '../cli/context.ts';
import { CliError } from '../errors.ts';
import { ExitCode } from '../exit.ts';
import { getSite } from '../http-json.ts';
import type { Runner } from '../program.ts';

interface VerifyOptions {
  run?: string;
  key?: string;
  provenance?: string;
}

export function registerVerifyCommand(program: Command, run: Runner): void {
  program
    .command('verify')
    .description('check a file against its run’s signed provenance and say what built it (exit 1 on any mismatch)')
    .argument('<file>', 'a downloaded artifact')
    .option('--run <job/n>', 'the run that made it (default: the newest run the server knows with its SHA-256)')
    .option('--key <pem>', 'the public key to trust (default: the server’s /provenance-key.pem)')
    .option('--provenance <file>', 'a provenance.json saved earlier, instead of fetching the run’s')
    .action((file: string, opts: VerifyOptions, cmd: Command) => run(cmd, (ctx) => verify(ctx, file, opts)));
}

async function verify(ctx: Context, file: string, opts: VerifyOptions): Promise<number> {
  const wanted = opts.run === undefined ? undefined : runArg(opts.run);
  const base = httpBase(ctx.globals.remote);
  let sha256: string;
  try {
    sha256 = (await hashFile(file)).sha256;
  } catch (err) {
    throw new CliError(ExitCode.Usage, `cannot read ${file}: ${(err as Error).message}`);
  }
  const envelope = opts.provenance
    ? await readJson(opts.provenance)
    : await getSite(`${base}${await provenancePath(base, sha256, wanted)}`, 'json');
  const key = opts.key ? await readText(opts.key) : ((await getSite(`${base}/provenance-key.pem`, 'text')) as string);

  const fail = (problem: string): number => {
    if (ctx.json) ctx.printJson({ ok: false, file, sha256, problem });
    ctx.warn(`verify failed: ${problem}`);
    return ExitCode.RunFailed;
  };
  const checked = verifyEnvelope(envelope, key);
  if (!checked.ok) return fail(`provenance: ${checked.problem}`);
  const about = describe(checked.statement);
  if (wanted && (about.job !== wanted.job || about.run !== wanted.number)) {
    return fail(`the provenance is of ${about.job}#${about.run}, not of ${wanted.job}#${wanted.number}`);
  }
  const subject = checked.statement.subject.find((s) => s.digest.sha256 === sha256);
  if (!subject) {
    return fail(
      `${file}: its SHA-256 ${sha256} is not that of any file run ${about.job}#${about.run} made (changed or another file)`,
    );
  }
  if (ctx.json) {
    ctx.printJson({ ok: true, file, sha256, artifact: subject.name, ...about });
    return ExitCode.Ok;
  }
  ctx.out(`OK ${file}: ${subject.name} (SHA-256 ${sha256})`);
  ctx.out(`  built by  ${about.job} run #${about.run} on ${about.platform}`);
  if (about.commit) ctx.out(`  commit    ${about.commit}${about.repository ? ` of ${about.repository}` : ''}`);
  ctx.out(`  worker    ${about.worker ?? 'unknown'}`);
  ctx.out(`  time      ${about.startedOn ?? '?'} – ${about.finishedOn ?? '?'}`);
  ctx.out(`  builder   ${about.builder}`);
  return ExitCode.Ok;
}

function runArg(text: string): { job: string; number: number } {
  const ref = parseRunRef(text);
  if (!ref || ref.kind !== 'number') throw new CliError(ExitCode.Usage, `--run takes JOB/N, not "${text}"`);
  return { job: ref.job, number: ref.number };
}

/** The run named, or the newest one the server knows that made a file with this SHA-256. */
async function provenancePath(
  base: string,
  sha256: string,
  wanted: { job: string; number: number } | undefined,
): Promise<string> {
  let run = wanted;
  if (!run) {
    const found = (await getSite(`${base}/api/hash?sha256=${sha256}`, 'json')) as {
      files?: { job: string; number: number }[];
    };
    const first = found.files?.[0];
    if (!first) {
      throw new CliError(
        ExitCode.RunFailed,
        `no run on ${base} made a file with SHA-256 ${sha256}: not a file it built`,
      );
    }
    run = { job: first.job, number: first.number };
  }
  return `/job/${encodeURIComponent(run.job)}/run/${run.number}/provenance.json`;
}

interface Origin {
  job: string;
  run: number;
  platform: string;
  commit: string | null;
  repository: string | null;
  worker: string | null;
  startedOn: string | null;
  finishedOn: string | null;
  builder: string;
}

/** What the signed statement says built the files (fields as reproduce/provenance.ts writes them). */
function describe(s: Statement): Origin {
  const p = s.predicate as {
    buildDefinition?: {
      externalParameters?: {
        job?: string;
        platform?: string;
        source?: { repository?: string | null; commit?: string | null };
      };
      internalParameters?: { run?: number };
    };
    runDetails?: {
      builder?: { id?: string };
      metadata?: { startedOn?: string | null; finishedOn?: string | null };
      byproducts?: { name?: string; annotations?: { worker?: string | null } }[];
    };
  };
  const ext = p.buildDefinition?.externalParameters ?? {};
  const env = p.runDetails?.byproducts?.find((b) => b.name === 'environment');
  return {
    job: ext.job ?? '?',
    run: p.buildDefinition?.internalParameters?.run ?? 0,
    platform: ext.platform ?? '?',
    commit: ext.source?.commit ?? null,
    repository: ext.source?.repository ?? null,
    worker: env?.annotations?.worker ?? null,
    startedOn: p.runDetails?.metadata?.startedOn ?? null,
    finishedOn: p.runDetails?.metadata?.finishedOn ?? null,
    builder: p.runDetails?.builder?.id ?? '?',
  };
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError(ExitCode.Usage, `cannot read ${basename(path)}: ${(err as Error).message}`);
  }
}

async function readJson(path: string): Promise<unknown> {
  const text = await readText(path);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new CliError(ExitCode.RunFailed, `verify failed: ${path} is not JSON (a provenance.json is expected)`);
  }
}
