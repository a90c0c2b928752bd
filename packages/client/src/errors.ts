import type { ErrorCode } from '@builder/protocol';

/** Every failure the client reports, with a message that says what to do. */
export abstract class ClientError extends Error {}

/** The server answered a request (or the hello) with an error. */
export class ServerError extends ClientError {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'ServerError';
    this.code = code;
  }
}

/**
 * `certificate`: the server's TLS certificate was refused; `proxy`: something in front of the server
 * answered instead of it, in a way that waiting does not fix (a 404, a refused upgrade). Neither is
 * retried; the others (a 502 from a proxy while the server restarts counts as `unreachable`) are.
 */
export type ConnectionErrorKind = 'unreachable' | 'closed' | 'timeout' | 'certificate' | 'proxy';

/** The server could not be reached, or the connection ended before the answer came. */
export class ConnectionError extends ClientError {
  readonly kind: ConnectionErrorKind;
  constructor(kind: ConnectionErrorKind, message: string) {
    super(message);
    this.name = 'ConnectionError';
    this.kind = kind;
  }

  /** Worth trying again later: a network blip, a restarting server or proxy. */
  get retryable(): boolean {
    return this.kind !== 'certificate' && this.kind !== 'proxy';
  }
}

/** Retrying cannot fix anything but a connection that could come back. */
export function isRetryable(error: unknown): error is ConnectionError {
  return error instanceof ConnectionError && error.retryable;
}

/** The server sent something that does not match the protocol: another version, or a bug. */
export class BadServerMessageError extends ClientError {
  constructor(message: string) {
    super(message);
    this.name = 'BadServerMessageError';
  }
}

/** A failure of the command line itself, with the exit code it maps to. */
export class CliError extends ClientError {
  readonly exitCode: number;
  constructor(exitCode: number, message: string) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** A socket error in words a user can act on. */
export function describeSocketError(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return 'connection refused (is builder-server running there?)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'ECONNRESET') return 'connection reset';
  if (code === 'ETIMEDOUT') return 'timed out';
  return error.message;
}
