import type { ErrorCode } from '@builder/protocol';

/** Exit codes of builder-worker (documented in --help). */
export const ExitCode = {
  Ok: 0,
  Failure: 1,
  Usage: 2,
  /** The server refused us for good (bad token, forbidden, no common protocol version), or its certificate was refused at the first connection. */
  Refused: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A bad command line or option value; the message is one line that says what to fix. */
export class UsageError extends Error {
  readonly code = 'USAGE' as const;
  readonly exitCode = ExitCode.Usage;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The server answered our hello with an error that retrying will not fix. */
export class ServerRefusedError extends Error {
  readonly exitCode = ExitCode.Refused;
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(`server refused the worker (${code}): ${message}`);
    this.name = 'ServerRefusedError';
    this.code = code;
  }
}

/** The server's TLS certificate was refused at the first connection: a setup mistake, not a blip. */
export class UntrustedServerError extends Error {
  readonly exitCode = ExitCode.Refused;
  readonly code = 'CERTIFICATE' as const;
  constructor(message: string) {
    super(message);
    this.name = 'UntrustedServerError';
  }
}

/** Node system errors carry an errno code; keep it in messages people read. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
