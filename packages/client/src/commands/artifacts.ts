import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  artifactPathProblem,
  artifactUrlPath,
  httpBase,
  NAME_PATTERN,
  type ArtifactFile,
  type RunView,
} from '@builder/protocol';
import { certificateProblem, foreignAnswer, type Trust } from '@builder/protocol/net';
import {
  hashFile,
  scanOutputDir,
  sendArtifacts,
  type OutgoingFile,
  OutputRefused,
  type SendResult,
} from '@builder/protocol/transfer';
import type { Context } from '../cli/context.ts';
import { CliError } from '../errors.ts';
import { ExitCode } from '../exit.ts';
import type { Runner } from '../program.ts';
import { progressBar } from '../progress.ts';

export function registerArtifactCommands(program: Command, run: Runner): void {
  program
    .command('artifacts')
    .description('list a run’s artifacts (path, size, SHA-256); --download fetches and verifies them')
    .argument('<run>', 'UUID, JOB/N or JOB#N')
    .option('--download <dir>', 'save the files under this directory, checking each SHA-256')
    .action((ref: string, opts: { download?: string }, cmd: Command) =>
      run(cmd, (ctx) => (opts.download === undefined ? list(ctx, ref) : download(ctx, ref, resolve(opts.download)))),
    );

  program
    .command('upload')
    .description('record a run of JOB made of these files, built elsewhere (directories: their files)')
    .argument('<job>', 'an existing job')
    .argument('<files...>', 'files or directories; each file is stored under its name')
    .option('--platform <platform>', 'the platform the files are for (default: the job’s first)')
    .action((job: string, files: string[], opts: { platform?: string }, cmd: Command) =>
      run(cmd, (ctx) => upload(ctx, job, files, opts.platform)),
    );
}

async function list(ctx: Context, ref: string): Promise<number> {
  const { run, files } = await ctx.rpc('artifacts', { run: ref });
  if (ctx.json) {
    ctx.printJson({ run: runName(run), files });
    return ExitCode.Ok;
  }
  if (files.length === 0) ctx.note(`${runName(run)} has no artifacts`);
  const width = Math.max(0, ...files.map((f) => f.path.length));
  for (const f of files) ctx.out(`${f.path.padEnd(width)}  ${String(f.size).padStart(12)}  ${f.sha256}`);
  return ExitCode.Ok;
}

async function download(ctx: Context, ref: string, dir: string): Promise<number> {
  const { run, files } = await ctx.rpc('artifacts', { run: ref });
  const base = `${httpBase(ctx.globals.remote)}/job/${encodeURIComponent(run.job)}/run/${run.number}/artifacts/`;
  const total = files.reduce((n, f) => n + f.size, 0);
  const bar = progressBar(ctx.io.stderr, `${runName(run)} → ${dir}`, total);
  let done = 0;
  for (const f of files) {
    // the server vouches for these paths, but a path must never write outside DIR whoever sent it
    const problem = artifactPathProblem(f.path);
    if (problem) throw new CliError(ExitCode.RunFailed, `refusing artifact ${JSON.stringify(f.path)}: ${problem}`);
    const target = join(dir, ...f.path.split('/'));
    await mkdir(dirname(target), { recursive: true });
    await fetchVerified(base + artifactUrlPath(f.path), target, f, ctx.trust, (n) => bar.update((done += n)));
  }
  bar.finish();
  if (ctx.json) ctx.printJson({ run: runName(run), dir, files });
  else ctx.note(`${files.length} files (${total} bytes) of ${runName(run)} saved to ${dir}, SHA-256 checked`);
  return ExitCode.Ok;
}

/** Download into `target.part`, hashing as it arrives; only a verified file gets its name. */
async function fetchVerified(url: string, target: string, f: ArtifactFile, trust: Trust, onBytes: (n: number) => void) {
  const part = `${target}.part`;
  const res = await new Promise<IncomingMessage>((ok, fail) => {
    const options = trust.ca ? { ca: [...trust.ca] } : {};
    (url.startsWith('https:') ? httpsGet : httpGet)(url, options, ok).on('error', (err) =>
      fail(
        new CliError(
          ExitCode.Unreachable,
          certificateProblem(err, new URL(url).origin) ?? `cannot download ${f.path}: ${err.message}`,
        ),
      ),
    );
  });
  if (res.statusCode !== 200) {
    const body = await readSmall(res);
    const foreign = foreignAnswer(res.statusCode ?? 0, res.headers, body);
    if (foreign !== undefined) throw new CliError(ExitCode.Unreachable, `cannot download ${f.path}: ${foreign}`);
    const code = res.statusCode === 404 ? ExitCode.NotFound : ExitCode.RunFailed;
    throw new CliError(code, `cannot download ${f.path}: the server answered ${res.statusCode}`);
  }
  const hash = createHash('sha256');
  let size = 0;
  const out = createWriteStream(part);
  try {
    await new Promise<void>((ok, fail) => {
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        size += chunk.length;
        onBytes(chunk.length);
        if (!out.write(chunk)) {
          res.pause();
          out.once('drain', () => res.resume());
        }
      });
      res.once('end', () => out.end(ok));
      res.once('error', fail);
      res.once('aborted', () => fail(new Error('the connection broke')));
      out.once('error', fail);
    });
  } catch (err) {
    out.destroy();
    await rm(part, { force: true });
    throw new CliError(ExitCode.Unreachable, `cannot download ${f.path}: ${(err as Error).message}`);
  }
  const sha = hash.digest('hex');
  if (size !== f.size || sha !== f.sha256) {
    await rm(part, { force: true });
    throw new CliError(
      ExitCode.RunFailed,
      `${f.path} does not match its checksum (got ${size} bytes, sha256 ${sha}; expected ${f.size} bytes, ${f.sha256})`,
    );
  }
  await rename(part, target);
}

async function upload(ctx: Context, job: string, args: string[], platform: string | undefined): Promise<number> {
  if (!NAME_PATTERN.test(job)) throw new CliError(ExitCode.Usage, `"${job}" is not a valid job name`);
  if (platform !== undefined && !NAME_PATTERN.test(platform)) {
    throw new CliError(ExitCode.Usage, `"${platform}" is not a valid platform name`);
  }
  if (!ctx.globals.token) throw new CliError(ExitCode.Usage, 'no token: pass --token TOKEN or set BUILDER_TOKEN');
  const files = await collect(args);
  const query = platform === undefined ? '' : `?platform=${encodeURIComponent(platform)}`;
  const r = await sendFiles(ctx, files, {
    path: `/upload/${encodeURIComponent(job)}${query}`,
    label: `upload ${job}`,
    doing: 'upload to',
    refused: 'upload refused',
  });
  const answer = r as typeof r & { job?: string; number?: number };
  if (ctx.json) ctx.printJson(answer);
  else {
    ctx.out(`${answer.job}#${answer.number}`);
    ctx.note(
      `uploaded ${r.files} files (${r.bytes} bytes, ${r.sent} of them sent, ${r.stored} new to the store) as ${answer.job}#${answer.number}`,
    );
  }
  return ExitCode.Ok;
}

/** Each FILE under its own name; each DIR's files under DIR's name. Two files may not share a path. */
async function collect(args: string[]): Promise<OutgoingFile[]> {
  const files: OutgoingFile[] = [];
  for (const arg of args) {
    const abs = resolve(arg);
    const st = await stat(abs).catch(() => {
      throw new CliError(ExitCode.Usage, `${arg}: no such file or directory`);
    });
    if (st.isFile()) files.push({ path: basename(abs), source: abs, ...(await hashFile(abs)) });
    else if (st.isDirectory()) {
      try {
        const { files: inner } = await scanOutputDir(abs);
        for (const f of inner) files.push({ ...f, path: `${basename(abs)}/${f.path}` });
      } catch (err) {
        if (err instanceof OutputRefused) throw new CliError(ExitCode.Usage, `${arg}: ${err.message}`);
        throw err;
      }
    } else throw new CliError(ExitCode.Usage, `${arg} is not a regular file or directory`);
  }
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.path)) throw new CliError(ExitCode.Usage, `two files would be stored as ${f.path}`);
    seen.add(f.path);
  }
  if (files.length === 0) throw new CliError(ExitCode.Usage, 'nothing to upload: the directories are empty');
  return files;
}

/** An error answer's body, at most 64 KiB (it is only classified, never printed). */
async function readSmall(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (size < 65536) chunks.push(chunk);
    size += chunk.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function runName(run: RunView): string {
  return `${run.job}#${run.number}`;
}

/**
 * Send `files` to the server's `path` (`PUT`, only what its store lacks) with a progress bar on
 * stderr; a failure is the CliError transferFailure makes of it (`doing`/`refused` name the action).
 */
export async function sendFiles(
  ctx: Context,
  files: readonly OutgoingFile[],
  what: { path: string; label: string; doing: string; refused: string },
): Promise<SendResult & { ok: true }> {
  const token = ctx.globals.token;
  if (!token) throw new CliError(ExitCode.Usage, 'no token: pass --token TOKEN or set BUILDER_TOKEN');
  const base = httpBase(ctx.globals.remote);
  const bar = progressBar(
    ctx.io.stderr,
    what.label,
    files.reduce((n, f) => n + f.size, 0),
  );
  const r = await sendArtifacts({
    url: `${base}${what.path}`,
    missingUrl: `${base}/blobs/missing`,
    token,
    files,
    onProgress: (sent) => bar.update(sent),
    trust: ctx.trust,
  });
  bar.finish();
  if (!r.ok) throw transferFailure(r, { remote: ctx.globals.remote, doing: what.doing, refused: what.refused });
  return r;
}

/**
 * A transfer the server did not take, as the CLI says it. Nothing refused it when the certificate,
 * the network or a proxy stood in the way (exit 4, "cannot DOING REMOTE"); otherwise the server's
 * answer decides: 507 (its disk is full: try again later), 401/403 exit 4, 404 exit 3, a bad
 * request exit 2, anything else exit 1.
 */
function transferFailure(
  r: SendResult & { ok: false },
  what: { remote: string; doing: string; refused: string },
): CliError {
  if (r.code === 'CERTIFICATE') return new CliError(ExitCode.Unreachable, r.error);
  if (r.code === 'NETWORK' || r.code === 'PROXY') {
    return new CliError(ExitCode.Unreachable, `cannot ${what.doing} ${what.remote}: ${r.error}`);
  }
  const code =
    r.status === 0 || r.status === 401 || r.status === 403 || r.status === 507
      ? ExitCode.Unreachable
      : r.status === 404
        ? ExitCode.NotFound
        : r.status === 400 || r.status === 413 || r.status === 422
          ? ExitCode.Usage
          : ExitCode.RunFailed;
  return new CliError(code, `${what.refused}: ${r.error}`);
}
