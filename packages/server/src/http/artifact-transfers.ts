import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  ARTIFACT_LIMITS,
  ATTEMPT_SECRET_HEADER,
  MissingRequestSchema,
  NAME_PATTERN,
  type ArtifactsReply,
} from '@builder/protocol';
import { ArtifactsRefused, receiveArtifacts, type Received } from '../artifacts/intake.ts';
import type { Context } from '../context.ts';
import type { RunRow } from '../store/rows.ts';
import { attemptSecretMatches } from '../runs/attempt-secret.ts';
import { isStorageFull, storageFullError } from '../storage/full.ts';
import { mayActAsWorker } from '../store/tokens.ts';
import { authorize, reply } from './auth.ts';

/** What an artifact transfer touches: auth, the run it belongs to, staging, the blob store, the batch. */
export type TransferDeps = Pick<
  Context,
  | 'db'
  | 'jobs'
  | 'runs'
  | 'artifacts'
  | 'blobs'
  | 'artifactTmpDir'
  | 'maxArtifactBytes'
  | 'attemptKey'
  | 'commit'
  | 'logs'
  | 'clock'
  | 'logger'
  | 'metrics'
  | 'storage'
> &
  /** An upload is a succeeded run: the repositories it feeds are republished. */
  Partial<Pick<Context, 'repoPublisher'>>;

/*
 * Artifact transfers: `PUT /artifacts/RUN/ATTEMPT` (a worker, for the attempt it runs),
 * `PUT /upload/JOB[?platform=P]` (an admin: a manual run made of those files) and
 * `POST /blobs/missing` (which blobs a sender may leave out). Each answers JSON.
 */

/** `PUT /artifacts/RUN/ATTEMPT`. */
export function workerUpload(
  ctx: TransferDeps,
  req: IncomingMessage,
  res: ServerResponse,
  _url: URL,
  [runId = '', attempt = '']: readonly string[],
): void {
  workerPut(ctx, req, res, runId, Number(attempt)).catch((err) => failed(ctx, req, res, err));
}

/** `PUT /upload/JOB[?platform=P]`. */
export function adminUpload(
  ctx: TransferDeps,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  [job = '']: readonly string[],
): void {
  uploadPut(ctx, req, res, decode(job), url.searchParams.get('platform')).catch((err) => failed(ctx, req, res, err));
}

/** `POST /blobs/missing`. */
export function missingBlobs(ctx: TransferDeps, req: IncomingMessage, res: ServerResponse): void {
  void missing(ctx, req, res);
}

async function workerPut(ctx: TransferDeps, req: IncomingMessage, res: ServerResponse, runId: string, attempt: number) {
  const run = attemptHolder(ctx, req, res, runId, attempt, { may: 'send its artifacts', tokenMay: 'write to it' });
  if (!run) return;
  const received = await receive(ctx, req, res, `${run.job}#${run.number}`);
  if (!received) return;
  ctx.commit.write(() => ctx.artifacts.record(run.id, received.files));
  ctx.commit.then(
    () => reply(req, res, 200, summary(received)),
    () => storageFull(req, res),
  );
}

/**
 * The run when the request comes from the worker holding `attempt` of it, with the secret its
 * assignment carried (a worker or admin token alone is not enough); otherwise the refusal is sent.
 */
export function attemptHolder(
  ctx: Pick<TransferDeps, 'db' | 'runs' | 'attemptKey' | 'logger'>,
  req: IncomingMessage,
  res: ServerResponse,
  runId: string,
  attempt: number,
  what: { may: string; tokenMay: string },
): RunRow | undefined {
  const grant = authorize(ctx, req, res, 'worker', 'admin');
  if (!grant) return undefined;
  const run = ctx.runs.get(runId);
  if (!run || (run.state !== 'assigned' && run.state !== 'running') || run.attempt !== attempt) {
    const now = run ? `it is ${run.state}, attempt ${run.attempt}` : 'no such run';
    reply(req, res, 409, {
      ok: false,
      code: 'CONFLICT',
      error: `run ${runId} attempt ${attempt} is not running (${now})`,
    });
    return undefined;
  }
  // only the worker holding the attempt, with the secret its assignment carried, may
  const secret = req.headers[ATTEMPT_SECRET_HEADER];
  const holder = run.worker ?? '';
  if (!mayActAsWorker(grant, holder) || !attemptSecretMatches(ctx.attemptKey, run, single(secret))) {
    ctx.logger.warn('artifacts.refused_writer', {
      run: run.id,
      attempt,
      worker: holder,
      token: grant.worker ?? grant.role,
      secret: secret === undefined ? 'absent' : 'wrong',
    });
    reply(req, res, 403, {
      ok: false,
      code: 'FORBIDDEN',
      error: mayActAsWorker(grant, holder)
        ? `the attempt secret is ${secret === undefined ? 'missing' : 'wrong'}: only the worker running attempt ${attempt} may ${what.may}`
        : `run ${run.job}#${run.number} attempt ${attempt} is held by worker ${holder}: this token may not ${what.tokenMay}`,
    });
    return undefined;
  }
  return run;
}

async function uploadPut(
  ctx: TransferDeps,
  req: IncomingMessage,
  res: ServerResponse,
  jobName: string,
  platformParam: string | null,
) {
  if (!authorize(ctx, req, res, 'admin')) return;
  const job = NAME_PATTERN.test(jobName) ? ctx.jobs.get(jobName) : undefined;
  if (!job) {
    return reply(req, res, 404, {
      ok: false,
      code: 'NOT_FOUND',
      error: `job ${jobName} does not exist: schedule it first (builder-client schedule ${jobName} …)`,
    });
  }
  const platform = platformParam ?? job.platforms[0]!;
  if (!job.platforms.includes(platform)) {
    return reply(req, res, 400, {
      ok: false,
      code: 'INVALID_ARGUMENT',
      error: `job ${job.name} does not build for platform ${platform} (it builds for: ${job.platforms.join(', ')})`,
    });
  }
  const received = await receive(ctx, req, res, `upload to ${job.name}`);
  if (!received) return;
  const now = ctx.clock.now();
  const run = ctx.commit.write(() => {
    const r = ctx.runs.insertUploaded({
      jobId: job.id,
      number: ctx.jobs.allocateNumber(job.id),
      platform,
      script: '',
      params: {},
      trigger: 'upload',
      maxAttempts: 1,
      retryBackoffSec: 0,
      timeoutSec: job.timeoutSec,
      killGraceSec: job.killGraceSec,
      priority: 0,
      queuedAt: now,
      worker: 'upload',
      finishedAt: now,
    });
    ctx.artifacts.record(r.id, received.files);
    const bytes = ctx.logs.append(
      r.id,
      `[builder] uploaded ${received.files.length} files (${received.bytes} bytes)\n`,
    );
    ctx.runs.recordLogBytes(r.id, bytes);
    ctx.commit.beforeFlush(() => ctx.logs.syncDirty());
    return r;
  });
  ctx.logs.close(run.id);
  ctx.logger.info('artifacts.uploaded', { job: job.name, number: run.number, files: received.files.length });
  ctx.commit.then(
    () => {
      ctx.repoPublisher?.runSucceeded(run);
      reply(req, res, 200, { ...summary(received), job: job.name, number: run.number, id: run.id, platform });
    },
    () => storageFull(req, res),
  );
}

/** Read and store the transfer; on refusal answer the sender and return undefined. */
export async function receive(
  ctx: TransferDeps,
  req: IncomingMessage,
  res: ServerResponse,
  what: string,
): Promise<Received | undefined> {
  // refused before a byte is read: the sender keeps its files and tries again later
  if (ctx.storage.refusing) {
    ctx.metrics?.artifactTransfer('failed');
    ctx.logger.warn('artifacts.refused', { what, why: 'disk full' });
    storageFull(req, res);
    return undefined;
  }
  const declared = Number(req.headers['content-length'] ?? NaN);
  // manifest + tar headers are small next to the limit; refuse before reading when the size says so
  if (Number.isFinite(declared) && declared > ctx.maxArtifactBytes * 1.01 + 64 * 1024 * 1024) {
    reply(req, res, 413, {
      ok: false,
      code: 'ARTIFACTS_TOO_LARGE',
      error: `the transfer is ${declared} bytes, over the server's limit of ${ctx.maxArtifactBytes} (--artifact-limit)`,
    });
    return undefined;
  }
  try {
    const received = await receiveArtifacts(req, {
      tmpDir: ctx.artifactTmpDir,
      blobs: ctx.blobs,
      maxBytes: ctx.maxArtifactBytes,
    });
    ctx.metrics?.artifactTransfer('stored', received);
    ctx.logger.info('artifacts.received', {
      what,
      files: received.files.length,
      bytes: received.bytes,
      sent: received.sent,
      stored: received.stored,
    });
    return received;
  } catch (err) {
    ctx.metrics?.artifactTransfer(err instanceof ArtifactsRefused ? 'refused' : 'failed');
    if (isStorageFull(err)) {
      ctx.storage.enter(err, `artifacts of ${what}`);
      storageFull(req, res);
    } else if (err instanceof ArtifactsRefused) {
      ctx.logger.warn('artifacts.refused', { what, error: err.message });
      reply(req, res, err.status, { ok: false, code: err.code, error: err.message });
    } else {
      ctx.logger.error('artifacts.failed', { what, error: String(err) });
      reply(req, res, 500, { ok: false, code: 'INTERNAL', error: `storing the artifacts failed: ${String(err)}` });
    }
    return undefined;
  }
}

/** Which of the asked blobs the store lacks (or has at another size): the sender leaves the others out. */
async function missing(ctx: TransferDeps, req: IncomingMessage, res: ServerResponse) {
  if (!authorize(ctx, req, res, 'worker', 'admin')) return;
  // asked first by every sender: a refusal here spares it sending a body that cannot be stored
  // (counted as the failed transfer it stands for)
  if (ctx.storage.refusing) {
    ctx.metrics?.artifactTransfer('failed');
    ctx.logger.warn('artifacts.refused', { what: 'missing blobs query', why: 'disk full' });
    return storageFull(req, res);
  }
  let body = '';
  let tooLong = false;
  req.setEncoding('utf8');
  for await (const chunk of req as AsyncIterable<string>) {
    body += chunk;
    if (body.length > ARTIFACT_LIMITS.maxManifestBytes) {
      tooLong = true;
      break;
    }
  }
  let parsed: ReturnType<typeof MissingRequestSchema.safeParse> | undefined;
  try {
    parsed = tooLong ? undefined : MissingRequestSchema.safeParse(JSON.parse(body));
  } catch {
    parsed = undefined;
  }
  if (!parsed?.success) {
    const why = parsed?.error.issues[0]?.message ?? (tooLong ? 'the request is too long' : 'not JSON');
    return reply(req, res, 400, {
      ok: false,
      code: 'INVALID_ARGUMENT',
      error: `expected {"blobs": [{"sha256": ..., "size": ...}]}: ${why}`,
    });
  }
  const out: string[] = [];
  for (const b of parsed.data.blobs) if (!(await ctx.blobs.has(b.sha256, b.size))) out.push(b.sha256);
  reply(req, res, 200, { missing: out });
}

/** 507: the sender retries later (the worker holds the run's result until its artifacts are stored). */
export function storageFull(req: IncomingMessage, res: ServerResponse): void {
  const e = storageFullError('store artifacts');
  reply(req, res, 507, { ok: false, code: e.code, error: e.message });
}

/** A transfer handler threw: answer (507 when the disk is full) instead of an unhandled rejection. */
export function failed(ctx: TransferDeps, req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (isStorageFull(err)) {
    ctx.storage.enter(err, 'artifact transfer');
    return storageFull(req, res);
  }
  ctx.logger.error('artifacts.failed', { error: String((err as Error).stack ?? err) });
  reply(req, res, 500, { ok: false, code: 'INTERNAL', error: `storing the artifacts failed: ${String(err)}` });
}

const single = (h: string | string[] | undefined): string | undefined => (Array.isArray(h) ? undefined : h);

export function summary(r: Received): ArtifactsReply {
  return { ok: true, files: r.files.length, bytes: r.bytes, sent: r.sent, stored: r.stored };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return '\u0000invalid';
  }
}
