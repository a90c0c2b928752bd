import { describe, expect, it } from 'vitest';
import { ErrorCode, ProtocolError, toProtocolError } from './errors.ts';

describe('toProtocolError', () => {
  it('passes a ProtocolError through untouched', () => {
    const e = new ProtocolError(ErrorCode.NotFound, 'no job named x');
    expect(toProtocolError(e, ErrorCode.BadMessage)).toBe(e);
  });

  it('wraps anything else as INTERNAL by default, saying so, and keeps the original as cause', () => {
    const original = Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
    const e = toProtocolError(original);
    expect(e).toBeInstanceOf(ProtocolError);
    expect(e.code).toBe(ErrorCode.Internal);
    expect(e.message).toBe('internal error: disk I/O error');
    expect(e.cause).toBe(original);
  });

  it('uses the fallback code given, with the plain message', () => {
    const e = toProtocolError(new TypeError('expected an object'), ErrorCode.BadMessage);
    expect(e.code).toBe(ErrorCode.BadMessage);
    expect(e.message).toBe('expected an object');
    expect(e.cause).toBeInstanceOf(TypeError);
  });

  it('takes thrown values that are not errors', () => {
    const e = toProtocolError('boom');
    expect(e.message).toBe('internal error: boom');
    expect(e.cause).toBe('boom');
  });
});
