import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { startRetention } from './artifacts/retention.ts';
import type { Context } from './context.ts';
import { createServerCore } from './core.ts';
import { handleHttp } from './http/routes.ts';
import { readTls, reloadTls } from './http/tls.ts';
import { SERVER_HEADER } from '@builder/protocol/net';
import { storageFullError } from './storage/full.ts';
import type { ServerOptions } from './options.ts';
import type { Scheduler } from './scheduler/scheduler.ts';

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly ctx: Context;
  readonly scheduler: Scheduler;
  /** With --tls-cert: read the certificate and key again for new connections (SIGHUP). */
  reloadTls(): boolean;
  close(): Promise<void>;
}

/** Open the data dir, recover from whatever state the last process left, and start serving. */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const core = createServerCore(opts);
  const { ctx, hub, scheduler } = core;

  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    // tells builder's own answers from a proxy's (a 502 page, a 413 from a body limit)
    res.setHeader(SERVER_HEADER, ctx.version);
    handleHttp(ctx, req, res);
  };
  const tls = opts.tls;
  const http: HttpServer | HttpsServer = tls ? createHttpsServer(readTls(tls), answer) : createServer(answer);
  http.on('upgrade', (req, socket, head) => hub.upgrade(req, socket, head));
  http.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port, opts.host, () => resolve());
  });
  scheduler.start();
  const retention = opts.retention
    ? startRetention(
        {
          db: ctx.db,
          blobs: ctx.blobs,
          clock: ctx.clock,
          logger: ctx.logger,
          // into the current group-commit batch, committed before any blob goes
          write: (fn) => {
            ctx.commit.write(fn);
            if (!ctx.commit.flush()) throw storageFullError('apply the retention policy');
          },
        },
        opts.retention,
      )
    : undefined;
  const port = (http.address() as AddressInfo).port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `${tls ? 'https' : 'http'}://${host}:${port}`;
  if (ctx.alerts && !opts.alerts?.publicUrl) ctx.alerts.publicUrl = url;
  ctx.logger.info('server.listening', { url, dataDir: opts.dataDir, ...(tls && { tlsCert: tls.certFile }) });

  let closed = false;
  return {
    url,
    port,
    ctx,
    scheduler,
    reloadTls: () => (tls ? reloadTls(http as HttpsServer, tls, ctx.logger) : false),
    async close() {
      if (closed) return;
      closed = true;
      core.stop();
      await retention?.stop();
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeIdleConnections();
        // live console followers and long transfers would hold close() open: they get a moment, then
        // are cut (a browser reconnects, a worker retries its artifacts, a client re-downloads)
        setTimeout(() => http.closeAllConnections(), 1000).unref();
      });
      core.close();
    },
  };
}
