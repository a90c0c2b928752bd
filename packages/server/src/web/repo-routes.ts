import type { IncomingMessage, ServerResponse } from 'node:http';
import { layout } from './layout.ts';
import { PageError, type Page } from './pages/page.ts';
import { repoPage, reposPage, type RepoPageDeps } from './pages/repo.ts';
import { sendHtml, sendJson, sendText, wantsJson } from './respond.ts';

export type RepoRouteDeps = RepoPageDeps & { version: string; publicUrl?: string };

/** `/repos` and `/repo/NAME`, HTML or JSON as every page. */
export function reposRoute(ctx: RepoRouteDeps, req: IncomingMessage, res: ServerResponse, url: URL): void {
  answer(ctx, req, res, url, () => reposPage(ctx, base(ctx, req)));
}

export function repoRoute(
  ctx: RepoRouteDeps,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  [name = '']: readonly string[],
): void {
  answer(ctx, req, res, url, () => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(name);
    } catch {
      throw new PageError(400, 'malformed percent-encoding in the URL');
    }
    return repoPage(ctx, decoded, base(ctx, req));
  });
}

function answer(ctx: RepoRouteDeps, req: IncomingMessage, res: ServerResponse, url: URL, render: () => Page): void {
  const json = wantsJson(req, url);
  let p: Page;
  try {
    p = render();
  } catch (err) {
    if (!(err instanceof PageError)) throw err;
    if (json) return sendJson(req, res, err.status, { error: err.message });
    return sendText(req, res, err.status, err.message);
  }
  if (json) sendJson(req, res, p.status ?? 200, p.data);
  else sendHtml(req, res, p.status ?? 200, layout(p.meta, p.body, ctx.version));
}

/** Where clients reach the site: `--public-url`, else the Host this request came to. */
function base(ctx: RepoRouteDeps, req: IncomingMessage): string {
  if (ctx.publicUrl) return ctx.publicUrl.replace(/\/+$/, '');
  const host = req.headers.host ?? '127.0.0.1';
  const tls = (req.socket as { encrypted?: boolean }).encrypted === true;
  return `${tls ? 'https' : 'http'}://${host}`;
}
