import type { IncomingMessage, ServerResponse } from 'node:http';
import { isTerminal } from '@builder/protocol';
import type { ConsoleDeps } from './deps.ts';
import { runAt } from './run-path.ts';
import { UNTRUSTED_BYTES_HEADERS } from './respond.ts';

const CHUNK = 64 * 1024;

/** Console bytes are served as inert text: the log is whatever a build printed. */
const TEXT_HEADERS = {
  'content-type': 'text/plain; charset=utf-8',
  ...UNTRUSTED_BYTES_HEADERS,
  'cache-control': 'no-store',
} as const;

/** The raw and live console, `/job/J/run/N/console.txt[?from=&follow=1]`: path segments still encoded. */
export function serveConsole(
  ctx: ConsoleDeps,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  [job = '', number = '']: readonly string[],
): void {
  const run = runAt(ctx, job, number);
  if (!run) {
    res.writeHead(404, TEXT_HEADERS).end('no such run\n');
    return;
  }
  const fromParam = url.searchParams.get('from');
  const from = fromParam === null ? 0 : /^\d{1,15}$/.test(fromParam) ? Number(fromParam) : NaN;
  if (Number.isNaN(from)) {
    res.writeHead(400, TEXT_HEADERS).end('bad "from": give a byte offset (a non-negative integer)\n');
    return;
  }
  const follow = url.searchParams.get('follow') === '1';
  if (follow && !isTerminal(run.state)) {
    // unknown length: chunked, and proxies must pass each chunk on as it comes
    res.writeHead(200, { ...TEXT_HEADERS, 'x-accel-buffering': 'no' });
    if (req.method === 'HEAD') res.end();
    else void stream(ctx, run.id, from, res, true);
    return;
  }
  const size = ctx.logs.size(run.id);
  const start = Math.min(from, size);
  res.writeHead(200, { ...TEXT_HEADERS, 'content-length': String(size - start) });
  if (req.method === 'HEAD') res.end();
  else void stream(ctx, run.id, start, res, false, size);
}

/**
 * Copy the console file from `offset` to the response a chunk at a time, waiting for the socket
 * to drain so a slow reader never makes the server hold the log in memory. Following, it then
 * waits for the run's next event (output made durable, the run ended) and copies what it added,
 * until the run is finished and everything was sent.
 */
async function stream(
  ctx: ConsoleDeps,
  runId: string,
  offset: number,
  res: ServerResponse,
  follow: boolean,
  end = Infinity,
): Promise<void> {
  let closed = false;
  let wake: (() => void) | undefined;
  /** An event of the run came since the follower last looked (so none is missed while it copies). */
  let changed = false;
  /** The run ended for good (told after the commit: every byte of it is readable). */
  let ended = false;
  const unsubscribe = follow
    ? ctx.events.subscribe((e) => {
        if (('runId' in e ? e.runId : 'run' in e ? e.run.id : undefined) !== runId) return;
        if (e.type === 'ended' && isTerminal(e.run.state)) ended = true;
        changed = true;
        wake?.();
      })
    : undefined;
  res.on('close', () => {
    closed = true;
    unsubscribe?.();
    wake?.();
  });
  const wait = (what: 'drain' | 'event') =>
    new Promise<void>((resolve) => {
      if (what === 'event' && changed) return resolve();
      const done = () => {
        res.off('drain', done);
        wake = undefined;
        resolve();
      };
      wake = done;
      if (what === 'drain') res.on('drain', done);
    });
  try {
    while (!closed) {
      // the state first: once it is terminal every byte of the run is already in the file (and
      // readable once its batch committed: this connection sees a batch's writes before then)
      changed = false;
      const finished = !follow || ended || (!ctx.commit.pending && isTerminal(ctx.runs.get(runId)?.state ?? 'error'));
      const size = Math.min(end, ctx.logs.size(runId));
      while (!closed && offset < size) {
        const buf = ctx.logs.read(runId, offset, Math.min(CHUNK, size - offset));
        if (buf.length === 0) break; // cut back by crash recovery under us: send what there is
        offset += buf.length;
        if (!res.write(buf)) await wait('drain');
      }
      if (finished) break;
      await wait('event');
    }
  } catch (err) {
    unsubscribe?.();
    ctx.logger.warn('console.stream_failed', { run: runId, error: String(err) });
    res.destroy();
    return;
  }
  unsubscribe?.();
  if (closed) return;
  // a length was promised but the file shrank (crash recovery): a short body must not look whole
  if (end !== Infinity && offset < end) res.destroy();
  else res.end();
}
