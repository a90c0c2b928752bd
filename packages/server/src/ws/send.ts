import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { encode, type ErrorCode, type Reattach, type Role, type Welcome } from '@builder/protocol';
import type { PeerSocket } from './socket.ts';

const CORKED = Symbol('builder.corked');
type Corkable = Socket & { [CORKED]?: boolean };

export function send(ws: PeerSocket, message: unknown, done?: () => void): void {
  if (ws.readyState !== WebSocket.OPEN) {
    done?.();
    return;
  }
  coalesce(ws);
  ws.send(encode(message), done ? () => done() : undefined);
}

export function sendError(ws: PeerSocket, code: ErrorCode, message: string): void {
  send(ws, { type: 'error', error: { code, message } });
}

/**
 * Everything sent to one peer in the same tick (an assign and a finished-ack after one commit,
 * say) leaves in one write: a syscall per message was a tenth of the server's time under load.
 */
function coalesce(ws: PeerSocket): void {
  // ws keeps its socket private; without it we simply send uncorked
  const socket = (ws as unknown as { _socket?: Corkable })._socket;
  if (!socket || socket[CORKED]) return;
  socket[CORKED] = true;
  socket.cork();
  process.nextTick(() => {
    socket[CORKED] = false;
    socket.uncork();
  });
}

/** The answer to an accepted hello. */
export function welcome(
  ctx: { version: string; heartbeatMs: number; leaseMs: number },
  version: number,
  role: Role,
  reattach: Reattach[],
): Welcome {
  return {
    type: 'welcome',
    version,
    serverVersion: ctx.version,
    role,
    heartbeatMs: ctx.heartbeatMs,
    leaseMs: ctx.leaseMs,
    reattach,
  };
}
