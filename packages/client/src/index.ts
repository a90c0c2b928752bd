export { Connection, type ConnectOptions, type EventListener, type Subscription } from './connection.ts';
export {
  BadServerMessageError,
  ClientError,
  CliError,
  ConnectionError,
  ServerError,
  type ConnectionErrorKind,
} from './errors.ts';
export { ExitCode, exitCodeForServerError, describeFailure } from './exit.ts';
export { Backoff, sleep, type BackoffOptions } from './backoff.ts';
export { webSocketUrl } from './remote.ts';
export { formatInZone, formatRunSummary, formatOutcome } from './format.ts';
export { formatDuration } from '@builder/protocol';
export { runCli, buildProgram, DEFAULT_REMOTE } from './program.ts';
export type { Io } from './cli/context.ts';
