import type { RawData } from 'ws';

/**
 * The part of a `ws` WebSocket the server uses. A real socket from the HTTP upgrade is one; so is
 * a simulated one (test/sim), which is how the protocol is tested without a network.
 */
export interface PeerSocket {
  /** WebSocket.CONNECTING | OPEN | CLOSING | CLOSED (0–3). */
  readonly readyState: number;
  /** Bytes queued and not yet written (a slow observer is dropped to a replay). */
  readonly bufferedAmount: number;
  send(data: string | Buffer, cb?: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  ping(): void;
  on(event: 'message', listener: (data: RawData, isBinary: boolean) => void): this;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'pong', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}
