import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { BlobNotFoundError } from '../artifacts/blob-store.ts';
import type { Context } from '../context.ts';
import { authorize, reply } from './auth.ts';
import { attemptHolder, failed, receive, storageFull, summary, type TransferDeps } from './artifact-transfers.ts';

/** Inputs travel like artifacts: the transfer deps, and the runs' input lists. */
export type InputTransferDeps = TransferDeps & Pick<Context, 'inputs'>;

/*
 * `PUT /inputs` (an admin, before `execute --input`): files in the artifact transfer format, stored
 * as blobs (each content once, shared with artifacts) and remembered as sent, so that `execute` can
 * name them by hash. `GET /inputs/RUN/ATTEMPT/NAME`: one input of a run, only for the worker
 * holding that attempt (its token and the attempt's secret), as the artifact upload is.
 */

/** `PUT /inputs`. */
export function inputUpload(ctx: InputTransferDeps, req: IncomingMessage, res: ServerResponse): void {
  uploadInputs(ctx, req, res).catch((err) => failed(ctx, req, res, err));
}

async function uploadInputs(ctx: InputTransferDeps, req: IncomingMessage, res: ServerResponse) {
  if (!authorize(ctx, req, res, 'admin')) return;
  const received = await receive(ctx, req, res, 'inputs');
  if (!received) return;
  ctx.commit.write(() => ctx.inputs.recordUploads(received.files, ctx.clock.now()));
  ctx.commit.then(
    () => reply(req, res, 200, summary(received)),
    () => storageFull(req, res),
  );
}

/** `GET /inputs/RUN/ATTEMPT/NAME`. */
export function inputDownload(
  ctx: InputTransferDeps,
  req: IncomingMessage,
  res: ServerResponse,
  _url: URL,
  [runId = '', attempt = '', name = '']: readonly string[],
): void {
  download(ctx, req, res, runId, Number(attempt), decode(name)).catch((err: unknown) => {
    ctx.logger.error('inputs.download_failed', { run: runId, name, error: String(err) });
    if (res.headersSent) res.destroy();
    else reply(req, res, 500, { ok: false, code: 'INTERNAL', error: `reading the input failed: ${String(err)}` });
  });
}

async function download(
  ctx: InputTransferDeps,
  req: IncomingMessage,
  res: ServerResponse,
  runId: string,
  attempt: number,
  name: string,
) {
  const run = attemptHolder(ctx, req, res, runId, attempt, { may: 'read its inputs', tokenMay: 'read them' });
  if (!run) return;
  const file = ctx.inputs.file(run.id, name);
  if (!file) {
    return reply(req, res, 404, {
      ok: false,
      code: 'NOT_FOUND',
      error: `run ${run.job}#${run.number} has no input ${name}`,
    });
  }
  let body;
  try {
    body = await ctx.blobs.open(file.sha256, file.size);
  } catch (err) {
    if (!(err instanceof BlobNotFoundError)) throw err;
    return reply(req, res, 410, {
      ok: false,
      code: 'GONE',
      error: `the bytes of input ${name} (sha256 ${file.sha256}) are not in the artifact store any more: send the file again`,
    });
  }
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': file.size,
    'x-builder-sha256': file.sha256,
    'cache-control': 'no-store',
  });
  await pipeline(body, res);
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return '\u0000invalid';
  }
}
