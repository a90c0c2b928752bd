import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../context.ts';

/** HTML pages and their JSON twins. */
export function handlePages(_ctx: Context, _req: IncomingMessage, _res: ServerResponse, _url: URL): boolean {
  return false;
}
