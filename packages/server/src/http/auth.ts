import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Role } from '@builder/protocol';
import type { Context } from '../context.ts';
import { grantOfToken, type TokenGrant } from '../store/tokens.ts';

/** Tokens are checked against the database, nothing else. */
export type AuthDeps = Pick<Context, 'db'>;

/** The token's grant when it has one of the `allowed` roles; otherwise the refusal is sent. */
export function authorize(
  ctx: AuthDeps,
  req: IncomingMessage,
  res: ServerResponse,
  ...allowed: Role[]
): TokenGrant | undefined {
  const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
  const grant = m ? grantOfToken(ctx.db, m[1]!) : undefined;
  const role = grant?.role;
  if (!grant || !role) {
    reply(req, res, 401, {
      ok: false,
      code: 'UNAUTHORIZED',
      error: 'a valid token is required (Authorization: Bearer)',
    });
    return undefined;
  }
  if (!allowed.includes(role)) {
    reply(req, res, 403, {
      ok: false,
      code: 'FORBIDDEN',
      error: `this needs a ${allowed.join(' or ')} token, not ${role}`,
    });
    return undefined;
  }
  return grant;
}

/** A JSON answer, once: a handler that already answered (or failed mid-body) sends nothing more. */
export function reply(req: IncomingMessage, res: ServerResponse, status: number, body: object): void {
  if (res.headersSent) return;
  // a refusal before the body was read: close afterwards so the sender stops sending
  if (status >= 400 && !req.complete) res.setHeader('connection', 'close');
  res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
}
