import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../context.ts';
import { handleWeb } from '../web/router.ts';
import { handleArtifactRoutes } from './artifact-routes.ts';

/** Plain HTTP next to the WebSocket endpoint: health, metrics, artifact transfers, the website. */
export function handleHttp(ctx: Context, req: IncomingMessage, res: ServerResponse): void {
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://builder.invalid');
  } catch {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('bad request URL\n');
    return;
  }
  if (handleArtifactRoutes(ctx, req, res, url)) return;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
    return;
  }
  if (url.pathname === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  if (url.pathname === '/metrics' && ctx.metrics) {
    serveMetrics(ctx, req, res);
    return;
  }
  if (handleWeb(ctx, req, res, url)) return;
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
}

/** Prometheus text exposition; gauges are read from SQLite and the worker registry right now. */
function serveMetrics(ctx: Context, req: IncomingMessage, res: ServerResponse): void {
  const metrics = ctx.metrics!;
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
