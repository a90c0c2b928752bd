import {
  ErrorMessageSchema,
  EventSchema,
  ResponseSchema,
  validate,
  WelcomeSchema,
  type ErrorMessage,
  type Event,
  type Response,
  type Welcome,
} from '@builder/protocol';
import { BadServerMessageError } from './errors.ts';

export type ServerMessage = ({ type: 'welcome' } & Welcome) | ErrorMessage | Response | Event;

/**
 * Decode one frame from the server. The `type` field picks the protocol schema that
 * validates the whole message; anything else is refused. (ws maxPayload bounds the size.)
 */
export function parseServerMessage(raw: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): ServerMessage {
  if (isBinary) throw new BadServerMessageError('the server sent a binary frame');
  const text = Array.isArray(raw)
    ? Buffer.concat(raw).toString('utf8')
    : Buffer.isBuffer(raw)
      ? raw.toString('utf8')
      : Buffer.from(raw).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BadServerMessageError('the server sent a message that is not JSON');
  }
  const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  try {
    switch (type) {
      case 'welcome':
        return validate(WelcomeSchema, value, 'welcome');
      case 'error':
        return validate(ErrorMessageSchema, value, 'error message');
      case 'response':
        return validate(ResponseSchema, value, 'response');
      case 'event':
        return validate(EventSchema, value, 'event');
      default:
        throw new BadServerMessageError(`the server sent a message of unknown type ${JSON.stringify(type)}`);
    }
  } catch (error) {
    if (error instanceof BadServerMessageError) throw error;
    throw new BadServerMessageError(`the server sent an ${(error as Error).message}`);
  }
}
