import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../context.ts';
import { branchMatches, checkProof, identifyForge, readPush, type ForgeRequest } from '../hooks/forges.ts';
import { enqueue, type EnqueueDeps } from '../runs/enqueue.ts';
import type { HookRow } from '../store/hooks.ts';
import type { JobRow, RunRow } from '../store/rows.ts';
import { reply } from './auth.ts';

/** What a push hook touches: the job and its hook, the queue, the batch, the log. */
export type HookDeps = EnqueueDeps & Pick<Context, 'jobs' | 'hooks' | 'storage'>;

/** Push payloads are small (GitHub lists at most 20 commits); anything longer is refused unread. */
export const MAX_HOOK_BODY_BYTES = 4 * 1024 * 1024;

const FORGE_HEADERS = 'X-GitHub-Event, X-Gitea-Event, X-Forgejo-Event or X-Gitlab-Event';

/**
 * `POST /hooks/JOB`: a forge's push event, signed with the job's hook secret, queues a run of the
 * pushed commit on every platform of the job. A redelivery (same delivery id) gets the same runs.
 */
export function pushHook(
  ctx: HookDeps,
  req: IncomingMessage,
  res: ServerResponse,
  _url: URL,
  [job = '']: readonly string[],
): void {
  handle(ctx, req, res, safeDecode(job)).catch((err: unknown) => {
    ctx.logger.error('hook.failed', { job, error: String(err) });
    reply(req, res, 500, { ok: false, code: 'INTERNAL', error: 'the hook could not be handled; see the server log' });
  });
}

async function handle(ctx: HookDeps, req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
  const forge = identifyForge(req.headers);
  if (!forge) {
    return reply(req, res, 400, {
      ok: false,
      code: 'INVALID_ARGUMENT',
      error: `not a webhook from a known forge: no ${FORGE_HEADERS} header`,
    });
  }
  const job = ctx.jobs.get(name);
  if (!job) return reply(req, res, 404, { ok: false, code: 'NOT_FOUND', error: `no job named "${name}"` });
  const hook = ctx.hooks.get(job.id);
  if (!hook) {
    return reply(req, res, 404, {
      ok: false,
      code: 'NOT_FOUND',
      error: `job ${job.name} has no push hook: give it a secret with builder-client hook set ${job.name}`,
    });
  }
  const body = await readBody(req);
  if (body === undefined) {
    return reply(req, res, 413, {
      ok: false,
      code: 'MESSAGE_TOO_LARGE',
      error: `the body is longer than ${MAX_HOOK_BODY_BYTES} bytes`,
    });
  }
  const proof = checkProof(forge.forge, req.headers, body, hook.secret);
  if (proof !== 'ok') {
    ctx.logger.warn('hook.refused', {
      job: job.name,
      forge: forge.forge,
      hookEvent: forge.event,
      delivery: forge.delivery,
      remote: req.socket.remoteAddress,
      why: `${forge.proofHeader} ${proof}`,
    });
    return reply(req, res, 401, {
      ok: false,
      code: 'UNAUTHORIZED',
      error: `the ${forge.proofHeader} header is ${proof}: it must prove the job's hook secret`,
    });
  }
  if (!forge.isPush) return ignored(ctx, req, res, job, forge, `a ${forge.event} event is not a push`);
  let payload: unknown;
  try {
    payload = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return reply(req, res, 400, {
      ok: false,
      code: 'INVALID_ARGUMENT',
      error: `the body is not JSON (${(err as Error).message}): set the webhook's content type to application/json`,
    });
  }
  const push = readPush(payload);
  if (push.kind === 'invalid') return reply(req, res, 400, { ok: false, code: 'INVALID_ARGUMENT', error: push.why });
  if (push.kind === 'ignored') return ignored(ctx, req, res, job, forge, push.why);
  if (job.source === null) {
    return reply(req, res, 422, {
      ok: false,
      code: 'INVALID_ARGUMENT',
      error: `job ${job.name} has no source: a push can only queue a job that checks out a repository (--source-git)`,
    });
  }
  const branches = wantedBranches(hook, job.source.ref, push.defaultBranch);
  if (typeof branches === 'string') return ignored(ctx, req, res, job, forge, branches);
  if (!branchMatches(push.branch, branches)) {
    const why = `branch ${push.branch} is not one job ${job.name} builds on push (${branches.join(', ')})`;
    return ignored(ctx, req, res, job, forge, why);
  }
  if (ctx.storage.refusing) {
    return reply(req, res, 503, { ok: false, code: 'STORAGE_FULL', error: 'the server disk is full; redeliver later' });
  }

  const earlier = forge.delivery === null ? undefined : ctx.hooks.delivery(job.id, forge.forge, forge.delivery);
  if (earlier !== undefined) {
    const runs = earlier.map((id) => ctx.runs.get(id)).filter((r): r is RunRow => r !== undefined);
    ctx.logger.info('hook.redelivered', { job: job.name, forge: forge.forge, delivery: forge.delivery });
    return answer(ctx, req, res, 200, { redelivery: true, branch: push.branch, commit: push.commit, runs });
  }
  const runs = enqueue(ctx, job, { params: {}, trigger: 'push', next: false, ref: push.commit });
  if (forge.delivery !== null) {
    const delivery = { jobId: job.id, forge: forge.forge, delivery: forge.delivery, commit: push.commit };
    ctx.commit.write(() => ctx.hooks.recordDelivery({ ...delivery, runs: runs.map((r) => r.id) }, ctx.clock.now()));
  }
  ctx.logger.info('hook.queued', {
    job: job.name,
    forge: forge.forge,
    delivery: forge.delivery,
    branch: push.branch,
    commit: push.commit,
    runs: runs.map((r) => r.number),
  });
  answer(ctx, req, res, 201, { redelivery: false, branch: push.branch, commit: push.commit, runs });
}

/** Replies once the batch holding the runs (and the delivery) is durable. */
function answer(
  ctx: HookDeps,
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  r: { redelivery: boolean; branch: string; commit: string; runs: RunRow[] },
): void {
  const body = {
    ok: true,
    queued: true,
    redelivery: r.redelivery,
    branch: r.branch,
    commit: r.commit,
    runs: r.runs.map((run) => ({
      id: run.id,
      job: run.job,
      number: run.number,
      platform: run.platform,
      url: `/job/${encodeURIComponent(run.job)}/run/${run.number}`,
    })),
  };
  ctx.commit.then(
    () => reply(req, res, status, body),
    () => reply(req, res, 503, { ok: false, code: 'STORAGE_FULL', error: 'the server disk is full; redeliver later' }),
  );
}

function ignored(
  ctx: HookDeps,
  req: IncomingMessage,
  res: ServerResponse,
  job: JobRow,
  forge: ForgeRequest,
  why: string,
): void {
  ctx.logger.info('hook.ignored', { job: job.name, forge: forge.forge, hookEvent: forge.event, why });
  reply(req, res, 202, { ok: true, queued: false, ignored: why });
}

/** The branches a push must be to: the hook's own, else the job's source ref; a string says why none. */
function wantedBranches(hook: HookRow, ref: string, defaultBranch: string | null): string[] | string {
  if (hook.branches !== null) return hook.branches;
  if (ref !== 'HEAD') return [ref];
  if (defaultBranch !== null) return [defaultBranch];
  return "the job builds its source's HEAD and the event names no default branch: choose branches with hook set --branch";
}

/** The whole body, or undefined once it is longer than the limit. */
async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_HOOK_BODY_BYTES) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_HOOK_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
