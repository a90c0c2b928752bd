import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Html } from './html.ts';

/** Sent with every website response; the CSP allows no inline script or style at all. */
export const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
} as const;

/**
 * For bytes a build produced (console logs, artifacts): never sniffed as HTML, and sandboxed should
 * a browser render them as a document anyway, so nothing a job wrote runs in the site's origin.
 */
export const UNTRUSTED_BYTES_HEADERS = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; sandbox",
} as const;

/**
 * JSON under `/api/`, or when the Accept header ranks application/json above text/html
 * (a browser's `text/html,…,*\/*;q=0.8` stays HTML; `application/json, *\/*` gets JSON).
 */
export function wantsJson(req: IncomingMessage, url: URL): boolean {
  if (url.pathname === '/api' || url.pathname.startsWith('/api/')) return true;
  const accept = req.headers.accept;
  if (!accept) return false;
  let json = 0;
  let htmlQ = 0;
  let anyQ = 0;
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.trim().toLowerCase().split(';');
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    if (!Number.isFinite(q)) continue;
    const t = type.trim();
    if (t === 'application/json') json = Math.max(json, q);
    else if (t === 'text/html' || t === 'application/xhtml+xml') htmlQ = Math.max(htmlQ, q);
    else if (t === '*/*' || t === 'text/*') anyQ = Math.max(anyQ, q);
  }
  // an explicit media type beats a wildcard of the same weight
  return json > 0 && json > htmlQ && json >= anyQ;
}

export function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': contentType,
    'content-length': String(bytes.length),
    'cache-control': 'no-cache',
    vary: 'Accept',
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

export function sendHtml(req: IncomingMessage, res: ServerResponse, status: number, doc: Html): void {
  send(req, res, status, 'text/html; charset=utf-8', doc.value);
}

export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, data: unknown): void {
  send(req, res, status, 'application/json; charset=utf-8', `${JSON.stringify(data, null, 2)}\n`);
}

export function sendText(req: IncomingMessage, res: ServerResponse, status: number, text: string): void {
  send(req, res, status, 'text/plain; charset=utf-8', `${text}\n`);
}

export function redirect(req: IncomingMessage, res: ServerResponse, location: string): void {
  send(req, res, 302, 'text/plain; charset=utf-8', `see ${location}\n`, { location });
}
