import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../context.ts';
import type { ConsoleDeps } from '../web/deps.ts';
import type { DownloadDeps } from './artifact-downloads.ts';
import type { TransferDeps } from './artifact-transfers.ts';
import type { HookDeps } from './push-hooks.ts';
import { serveConsole } from '../web/console-text.ts';
import {
  badgeRoute,
  compareRoute,
  chartRoute,
  failedRoute,
  feedRoute,
  hashRoute,
  jobRoute,
  jobsRoute,
  latestRoute,
  notFoundRoute,
  provenanceKeyRoute,
  provenanceRoute,
  runRoute,
  workersRoute,
} from '../web/pages.ts';
import { serveStatic } from '../web/static.ts';
import { artifactDownload } from './artifact-downloads.ts';
import { adminUpload, missingBlobs, workerUpload } from './artifact-transfers.ts';
import { inputDownload, inputUpload, type InputTransferDeps } from './input-transfers.ts';
import { pushHook } from './push-hooks.ts';
import { repoFile, repoKey, type RepoFileDeps } from './repo-files.ts';
import { repoRoute, reposRoute } from '../web/repo-routes.ts';

/** Everything a route of the table may use: the website's reads, transfers, downloads, /metrics. */
export type HttpDeps = ConsoleDeps &
  TransferDeps &
  InputTransferDeps &
  DownloadDeps &
  HookDeps &
  RepoFileDeps &
  Pick<Context, 'metrics'>;

/** Answers one request; `params` are the pattern's captures, still percent-encoded. */
export type Handler = (
  ctx: HttpDeps,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  params: readonly string[],
) => void;

export interface Route {
  /** Any other method gets 405 with an Allow header. */
  readonly methods: readonly string[];
  /** Matched against the URL's path, as sent (percent-encoded). */
  readonly path: RegExp;
  readonly handle: Handler;
}

const READ = ['GET', 'HEAD'] as const;
const SEGMENT = '([^/]+)';
/** Pages answer HTML, or JSON with `Accept: application/json` or under `/api/`. */
const page = (path: string, handle: Handler): Route => ({
  methods: READ,
  path: new RegExp(`^(?:/api)?${path}$`),
  handle,
});

/**
 * Every HTTP route of the server, first match wins. The WebSocket endpoint is the `upgrade`
 * of the same server (ws/hub.ts).
 */
export const ROUTES: readonly Route[] = [
  // artifact transfers (tokens) and downloads (public)
  { methods: ['PUT'], path: /^\/artifacts\/([0-9a-f-]{36})\/(\d{1,6})$/, handle: workerUpload },
  { methods: ['PUT'], path: /^\/upload\/([^/]+)$/, handle: adminUpload },
  { methods: ['POST'], path: /^\/blobs\/missing$/, handle: missingBlobs },
  // run inputs: sent by an admin before execute, read by the worker holding the attempt
  { methods: ['PUT'], path: /^\/inputs$/, handle: inputUpload },
  { methods: READ, path: /^\/inputs\/([0-9a-f-]{36})\/(\d{1,6})\/(.+)$/, handle: inputDownload },
  { methods: READ, path: /^\/job\/([^/]+)\/run\/([^/]+)\/artifacts\/(.+)$/, handle: artifactDownload },
  // push events from forges and git hooks (signed with the job's hook secret)
  { methods: ['POST'], path: /^\/hooks\/([^/]+)$/, handle: pushHook },
  // operations
  { methods: READ, path: /^\/healthz$/, handle: health },
  { methods: READ, path: /^\/metrics$/, handle: metrics },
  // the website
  { methods: READ, path: /^\/static\//, handle: serveStatic },
  { methods: READ, path: /^\/job\/([^/]+)\/run\/([^/]+)\/console\.txt$/, handle: serveConsole },
  page('/?', jobsRoute),
  page('/failed', failedRoute),
  page('/workers', workersRoute),
  page('/hash', hashRoute),
  page(`/job/${SEGMENT}`, jobRoute),
  page(`/job/${SEGMENT}/run/${SEGMENT}`, runRoute),
  page(`/job/${SEGMENT}/compare/${SEGMENT}/${SEGMENT}`, compareRoute),
  { methods: READ, path: /^\/job\/([^/]+)\/run\/([^/]+)\/provenance\.json$/, handle: provenanceRoute },
  { methods: READ, path: /^\/provenance-key\.pem$/, handle: provenanceKeyRoute },
  { methods: READ, path: /^\/feed\.atom$/, handle: feedRoute },
  { methods: READ, path: /^\/job\/([^/]+)\/feed\.atom$/, handle: feedRoute },
  { methods: READ, path: /^\/badge\/([^/]*)\.svg$/, handle: badgeRoute },
  { methods: READ, path: /^\/job\/([^/]+)\/chart\.svg$/, handle: chartRoute },
  { methods: READ, path: /^\/job\/([^/]+)\/latest\/(.*)$/, handle: latestRoute },
  // package repositories: the signing keys, each repository's page, its indices and pool
  { methods: READ, path: /^\/repo\/(key\.asc|key\.gpg|pkg-key\.pem)$/, handle: repoKey },
  page('/repos', reposRoute),
  page(`/repo/${SEGMENT}`, repoRoute),
  { methods: READ, path: /^\/repo\/([^/]+)\/(.+)$/, handle: repoFile },
];

/** Plain HTTP next to the WebSocket endpoint: the route table, then 405 or 404. */
export function handleHttp(ctx: HttpDeps, req: IncomingMessage, res: ServerResponse, routes = ROUTES): void {
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://builder.invalid');
  } catch {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('bad request URL\n');
    return;
  }
  const method = req.method ?? 'GET';
  for (const route of routes) {
    const m = route.path.exec(url.pathname);
    if (!m) continue;
    if (!route.methods.includes(method)) return methodNotAllowed(res, route.methods);
    return route.handle(ctx, req, res, url, m.slice(1));
  }
  if (!(READ as readonly string[]).includes(method)) return methodNotAllowed(res, READ);
  notFoundRoute(ctx, req, res, url, []);
}

function methodNotAllowed(res: ServerResponse, allowed: readonly string[]): void {
  res.writeHead(405, { allow: allowed.join(', '), 'content-type': 'text/plain' }).end('method not allowed\n');
}

function health(_ctx: HttpDeps, _req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
}

/** Prometheus text exposition; gauges are read from SQLite and the worker registry right now. */
function metrics(ctx: HttpDeps, req: IncomingMessage, res: ServerResponse, url: URL): void {
  const metrics = ctx.metrics;
  if (!metrics) return notFoundRoute(ctx, req, res, url, []);
  metrics.scrape().then(
    (body) => {
      res.writeHead(200, { 'content-type': metrics.contentType(), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    },
    (err: unknown) => {
      ctx.logger.error('metrics.failed', { error: String(err) });
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('metrics collection failed\n');
    },
  );
}
