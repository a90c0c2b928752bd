import WebSocket from 'ws';
import { encode, type ErrorCode } from '@builder/protocol';

export function send(ws: WebSocket, message: unknown, done?: () => void): void {
  if (ws.readyState !== WebSocket.OPEN) {
    done?.();
    return;
  }
  ws.send(encode(message), done ? () => done() : undefined);
}

export function sendError(ws: WebSocket, code: ErrorCode, message: string): void {
  send(ws, { type: 'error', error: { code, message } });
}
