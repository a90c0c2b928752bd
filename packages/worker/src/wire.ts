import {
  ErrorCode,
  type ErrorMessage,
  ErrorMessageSchema,
  ProtocolError,
  type ServerToWorker,
  ServerToWorkerSchema,
  validate,
  type Welcome,
  WelcomeSchema,
} from '@builder/protocol';
import type { RawData } from 'ws';

/** Everything the server may send to a worker, hello reply included. */
export type ServerMessage = Welcome | ErrorMessage | ServerToWorker;

/** Decode one frame from the server; throws ProtocolError on anything invalid. */
export function decodeServerMessage(raw: RawData, isBinary: boolean): ServerMessage {
  if (isBinary) throw new ProtocolError(ErrorCode.BadMessage, 'binary frames are not part of the protocol');
  const buf = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
  const text = buf.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError(ErrorCode.BadMessage, 'message is not valid JSON');
  }
  // One parse, then the schema the `type` field selects (the protocol has no single
  // union of welcome, error and the worker messages).
  const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  if (type === 'welcome') return validate(WelcomeSchema, value, 'welcome');
  if (type === 'error') return validate(ErrorMessageSchema, value, 'error message');
  return validate(ServerToWorkerSchema, value);
}
