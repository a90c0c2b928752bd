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
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
  }
}
