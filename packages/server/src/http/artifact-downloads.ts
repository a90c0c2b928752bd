import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { BlobDamagedError, BlobNotFoundError } from '../artifacts/blob-store.ts';
import type { Context } from '../context.ts';
import type { SiteDeps } from '../web/deps.ts';
import type { RunRow } from '../store/rows.ts';
import { UNTRUSTED_BYTES_HEADERS } from '../web/respond.ts';
import { runAt } from '../web/run-path.ts';
import { contentTypeFor, parseRange } from './content.ts';

/** A public download: the run's file list, the blob store, and a log for read failures. */
export type DownloadDeps = SiteDeps & Pick<Context, 'blobs' | 'logger'>;

/**
 * `GET /job/J/run/N/artifacts/PATH`: public, like the rest of the website; ranges, the SHA-256 as
 * ETag, served as untrusted bytes.
 */
export function artifactDownload(
  ctx: DownloadDeps,
  req: IncomingMessage,
  res: ServerResponse,
  _url: URL,
  [job = '', number = '', path = '']: readonly string[],
): void {
  void download(ctx, req, res, runAt(ctx, job, number), `${decode(job)}#${number}`, decode(path));
}

async function download(
  ctx: DownloadDeps,
  req: IncomingMessage,
  res: ServerResponse,
  run: RunRow | undefined,
  name: string,
  path: string,
) {
  const file = run ? ctx.artifacts.file(run.id, path) : undefined;
  if (!run || !file) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(run ? `run ${name} has no artifact ${path}\n` : `no run ${name}\n`);
    return;
  }
  const range = parseRange(req.headers.range, file.size);
  if (range === 'invalid') {
    res.writeHead(416, { 'content-range': `bytes */${file.size}` }).end();
    return;
  }
  const headers: Record<string, string | number> = {
    'content-type': contentTypeFor(path),
    'content-length': range ? range.end - range.start + 1 : file.size,
    'accept-ranges': 'bytes',
    etag: `"${file.sha256}"`,
    'x-builder-sha256': file.sha256,
    'cache-control': 'public, max-age=31536000, immutable',
    ...UNTRUSTED_BYTES_HEADERS,
  };
  if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${file.size}`;
  if (req.method === 'HEAD' || file.size === 0) {
    res.writeHead(range ? 206 : 200, headers).end();
    return;
  }
  try {
    const body = await ctx.blobs.open(file.sha256, file.size, range ?? undefined);
    res.writeHead(range ? 206 : 200, headers);
    await pipeline(body, res);
  } catch (err) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const missing = err instanceof BlobNotFoundError;
    if (!missing || err instanceof BlobDamagedError) {
      ctx.logger.error('artifacts.download_failed', { path, sha256: file.sha256, error: String(err) });
    }
    res.writeHead(missing ? 410 : 500, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`${goneText(err, path)}\n`);
  }
}

/** What a downloader reads when the bytes cannot be served whole; uploading the file again restores them. */
function goneText(err: unknown, path: string): string {
  if (err instanceof BlobDamagedError) {
    return `the stored bytes of ${path} are damaged (${err.size} of ${err.expected} bytes): not served; an admin can run builder-server verify`;
  }
  if (err instanceof BlobNotFoundError) {
    return `the bytes of ${path} are gone from the artifact store (removed, or quarantined by builder-server verify as damaged)`;
  }
  return 'reading the artifact failed';
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return '\u0000invalid';
  }
}
