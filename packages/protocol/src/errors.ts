/** Stable error codes carried on the wire; the message beside them is for humans. */
export const ErrorCode = {
  BadMessage: 'BAD_MESSAGE',
  MessageTooLarge: 'MESSAGE_TOO_LARGE',
  UnsupportedVersion: 'UNSUPPORTED_VERSION',
  HelloRequired: 'HELLO_REQUIRED',
  Unauthorized: 'UNAUTHORIZED',
  Forbidden: 'FORBIDDEN',
  NotFound: 'NOT_FOUND',
  InvalidArgument: 'INVALID_ARGUMENT',
  Conflict: 'CONFLICT',
  Internal: 'INTERNAL',
  /** The server cannot write (disk full): nothing was changed; the same request works once it has space. */
  StorageFull: 'STORAGE_FULL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error that crosses the wire: a stable code plus a message that says what to do. */
export class ProtocolError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

/**
 * Any thrown value as the error to send: a ProtocolError as it is, anything else under
 * `fallback` with its message (an unexpected INTERNAL one says so) and the original as `cause`,
 * for the log.
 */
export function toProtocolError(err: unknown, fallback: ErrorCode = ErrorCode.Internal): ProtocolError {
  if (err instanceof ProtocolError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ProtocolError(fallback, fallback === ErrorCode.Internal ? `internal error: ${message}` : message, {
    cause: err,
  });
}
