export { type Chunk, ConsoleBuffer, type ConsoleOptions } from './console.ts';
export {
  type Connect,
  Connection,
  type ConnectionHandler,
  type ConnectionOptions,
  type ServerSocket,
} from './connection.ts';
export { ExitCode, ServerRefusedError, UsageError } from './errors.ts';
export { createExecutor, EXECUTORS, type ExecutorName, isExecutorName } from './executors/index.ts';
export { HostExecutor } from './executors/host.ts';
export type { Executor, ExecutorDeps, RunIO } from './executors/types.ts';
export { createLogger, type Logger, silentLogger } from '@builder/protocol';
export { compileOptions, DEFAULTS, type WorkerOptions, type WorkerOptionsInput, websocketUrl } from './options.ts';
export { type Link, Run, RunPhase } from './runner.ts';
export { main, parseCommandLine } from './cli.ts';
export { type RunSnapshot, Worker, type WorkerDeps, WorkerState } from './worker.ts';
