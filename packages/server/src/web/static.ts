import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Context } from '../context.ts';
import { CONSOLE_CSS } from './console-css.ts';
import { SITE_CSS } from './site-css.ts';

/** The browser build (src/web/browser/tsconfig.json): dist/static next to this file's dist/web. */
const BROWSER_DIR = join(import.meta.dirname, '..', 'static');

type Source = { css: string } | { svg: string } | { file: string };

/**
 * Every URL under /static/ there is; anything else is a 404, so no request path ever reaches the
 * file system. Module URLs mirror the build's layout, so the scripts' relative imports resolve.
 */
/** A green square with a white check mark: the site's icon (no request for it should 404). */
const FAVICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2da44e"/><path d="M4 8.5l2.5 2.5L12 5.5" stroke="#fff" stroke-width="2" fill="none"/></svg>`;

const FILES: Readonly<Record<string, Source>> = {
  '/static/site.css': { css: SITE_CSS },
  '/static/console.css': { css: CONSOLE_CSS },
  '/static/browser/console.js': { file: 'browser/console.js' },
  '/static/browser/site.js': { file: 'browser/site.js' },
  '/static/ansi.js': { file: 'ansi.js' },
  '/static/favicon.svg': { svg: FAVICON },
};

const HEADERS = {
  'x-content-type-options': 'nosniff',
  // not versioned URLs: a short freshness, then revalidation by ETag
  'cache-control': 'public, max-age=300',
} as const;

/** `/static/*`: the site's stylesheets and browser modules. */
export function serveStatic(ctx: Pick<Context, 'logger'>, req: IncomingMessage, res: ServerResponse, url: URL): void {
  const source = Object.hasOwn(FILES, url.pathname) ? FILES[url.pathname] : undefined;
  if (!source) {
    res.writeHead(404, { ...HEADERS, 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
    return;
  }
  load(source).then(
    (body) => {
      const type =
        'css' in source
          ? 'text/css; charset=utf-8'
          : 'svg' in source
            ? 'image/svg+xml'
            : 'text/javascript; charset=utf-8';
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { ...HEADERS, etag }).end();
        return;
      }
      res.writeHead(200, { ...HEADERS, etag, 'content-type': type, 'content-length': String(body.length) });
      res.end(req.method === 'HEAD' ? undefined : body);
    },
    (err: unknown) => {
      // the browser build is missing (tsc -b not run?): say so instead of serving half a page
      ctx.logger.error('static.missing', { path: url.pathname, error: String(err) });
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('static file missing from the build\n');
    },
  );
}

function load(source: Source): Promise<Buffer> {
  if ('css' in source) return Promise.resolve(Buffer.from(source.css, 'utf8'));
  if ('svg' in source) return Promise.resolve(Buffer.from(source.svg, 'utf8'));
  return readFile(join(BROWSER_DIR, source.file));
}
