import { ErrorCode, ProtocolError } from '@builder/protocol';
import { BadServerMessageError, CliError, ConnectionError, ServerError } from './errors.ts';

/** Exit codes of `builder-client`; documented in `--help`. */
export const ExitCode = {
  Ok: 0,
  RunFailed: 1,
  Usage: 2,
  NotFound: 3,
  Unreachable: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const EXIT_CODES_HELP = `Exit codes:
  0  ok; for observe/watch/execute --follow: the run succeeded
  1  the run did not succeed (failed, timeout, cancelled, lost, error), or an internal error
  2  usage error: bad arguments or options, or the server refused them
  3  not found: no such job or run
  4  server unreachable, connection lost, or not authorised (bad or missing rights),
     or the server cannot store anything now (STORAGE_FULL: its disk is full; try again later)`;

export function exitCodeForServerError(code: ErrorCode): ExitCode {
  switch (code) {
    case ErrorCode.NotFound:
      return ExitCode.NotFound;
    case ErrorCode.InvalidArgument:
    case ErrorCode.BadMessage:
    case ErrorCode.Conflict:
    case ErrorCode.MessageTooLarge:
      return ExitCode.Usage;
    case ErrorCode.Unauthorized:
    case ErrorCode.Forbidden:
    case ErrorCode.UnsupportedVersion:
    case ErrorCode.HelloRequired:
    // like an unreachable server: nothing was done, and the same command works later
    case ErrorCode.StorageFull:
      return ExitCode.Unreachable;
    case ErrorCode.Internal:
      return ExitCode.RunFailed;
    default: {
      const never: never = code;
      throw new Error(`unknown error code ${String(never)}`);
    }
  }
}

/** The exit code and the one-line message for anything a command throws. */
export function describeFailure(error: unknown): { exitCode: number; message: string } {
  if (error instanceof CliError) return { exitCode: error.exitCode, message: error.message };
  if (error instanceof ServerError) {
    return { exitCode: exitCodeForServerError(error.code), message: `${error.message} (${error.code})` };
  }
  if (error instanceof ConnectionError) return { exitCode: ExitCode.Unreachable, message: error.message };
  if (error instanceof BadServerMessageError) return { exitCode: ExitCode.Unreachable, message: error.message };
  // a ProtocolError here comes from validating our own arguments against the wire schemas
  if (error instanceof ProtocolError) return { exitCode: ExitCode.Usage, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { exitCode: ExitCode.RunFailed, message: `internal error: ${message}` };
}

/** Single line, so every error is exactly one line on stderr. */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
}
