import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../context.ts';

/** Plain HTTP next to the WebSocket endpoint. The public website comes on top of this. */
export function handleHttp(ctx: Context, req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
    return;
  }
  if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  if (path === '/metrics' && ctx.metrics) {
    serveMetrics(ctx, req, res);
    return;
  }
  if (path === '/') {
    res
      .writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
      .end(`builder-server ${ctx.version}\nWebSocket endpoint: /ws (use builder-client)\n`);
    return;
  }
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
