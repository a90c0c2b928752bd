import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../context.ts';
import { handleConsole } from './console-routes.ts';
import { handlePages } from './pages.ts';
import { handleStatic } from './static.ts';

/**
 * The public, read-only website: pages (HTML, or JSON with `Accept: application/json` or under
 * `/api/`), consoles, badges and feeds. Returns false when no route matched.
 */
export function handleWeb(ctx: Context, req: IncomingMessage, res: ServerResponse, url: URL): boolean {
  if (handleStatic(ctx, req, res, url)) return true;
  if (handleConsole(ctx, req, res, url)) return true;
  return handlePages(ctx, req, res, url);
}
