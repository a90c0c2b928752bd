import type { z } from 'zod';
import { ErrorCode, ProtocolError } from './errors.ts';
import { LIMITS } from './limits.ts';

/**
 * Parse and validate one wire message. Anything that is not JSON, too large or
 * not of the schema becomes a ProtocolError with a code; nothing unvalidated gets through.
 */
export function decode<S extends z.ZodType>(schema: S, raw: string | Buffer | ArrayBuffer | Buffer[]): z.infer<S> {
  const text = toText(raw);
  if (Buffer.byteLength(text) > LIMITS.maxMessageBytes) {
    throw new ProtocolError(ErrorCode.MessageTooLarge, `message larger than ${LIMITS.maxMessageBytes} bytes`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError(ErrorCode.BadMessage, 'message is not valid JSON');
  }
  return validate(schema, value);
}

export function validate<S extends z.ZodType>(schema: S, value: unknown, what = 'message'): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    throw new ProtocolError(
      ErrorCode.BadMessage,
      `invalid ${what}${where}: ${issue?.message ?? 'does not match the schema'}`,
    );
  }
  return parsed.data;
}

export function encode(message: unknown): string {
  return JSON.stringify(message);
}

function toText(raw: string | Buffer | ArrayBuffer | Buffer[]): string {
  if (typeof raw === 'string') return raw;
  if (Array.isArray(raw)) return Buffer.concat(raw).toString('utf8');
  if (raw instanceof ArrayBuffer) return Buffer.from(raw).toString('utf8');
  return raw.toString('utf8');
}
