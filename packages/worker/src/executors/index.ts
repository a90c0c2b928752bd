import { HostExecutor } from './host.ts';
import type { Executor, ExecutorDeps } from './types.ts';

/** Executors this build knows; `--executor` must name one of them. */
export const EXECUTORS = {
  host: (deps: ExecutorDeps): Executor => new HostExecutor(deps),
} as const satisfies Record<string, (deps: ExecutorDeps) => Executor>;
export type ExecutorName = keyof typeof EXECUTORS;

export function isExecutorName(name: string): name is ExecutorName {
  return Object.hasOwn(EXECUTORS, name);
}

export function createExecutor(name: ExecutorName, deps: ExecutorDeps): Executor {
  return EXECUTORS[name](deps);
}

export type { Executor, ExecutorDeps, RunIO } from './types.ts';
