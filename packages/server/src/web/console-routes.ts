import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../context.ts';

/** Raw and live console endpoints (`/job/J/run/N/console.txt[?from=&follow=1]`). */
export function handleConsole(_ctx: Context, _req: IncomingMessage, _res: ServerResponse, _url: URL): boolean {
  return false;
}
