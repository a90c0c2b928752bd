import { ChrootExecutor } from './chroot.ts';
import type { ChrootOptions } from './chroot-options.ts';
import { HostExecutor } from './host.ts';
import { JailExecutor } from './jail.ts';
import type { JailOptions } from './jail-options.ts';
import type { Executor, ExecutorDeps } from './types.ts';

/** The deps plus each executor's own compiled options (set only for the executor chosen). */
export interface ExecutorConfig extends ExecutorDeps {
  readonly jail?: JailOptions | undefined;
  readonly chroot?: ChrootOptions | undefined;
}

/** Executors this build knows; `--executor` must name one of them. */
export const EXECUTORS = {
  host: (deps: ExecutorConfig): Executor => new HostExecutor(deps),
  jail: ({ jail, ...deps }: ExecutorConfig): Executor => {
    if (!jail) throw new Error('the jail executor needs its options (compileOptions makes them for --executor jail)');
    return new JailExecutor({ ...deps, jail });
  },
  chroot: ({ chroot, ...deps }: ExecutorConfig): Executor => {
    if (!chroot)
      throw new Error('the chroot executor needs its options (compileOptions makes them for --executor chroot)');
    return new ChrootExecutor({ ...deps, chroot });
  },
} as const satisfies Record<string, (deps: ExecutorConfig) => Executor>;
export type ExecutorName = keyof typeof EXECUTORS;

export function isExecutorName(name: string): name is ExecutorName {
  return Object.hasOwn(EXECUTORS, name);
}

export function createExecutor(name: ExecutorName, deps: ExecutorConfig): Executor {
  return EXECUTORS[name](deps);
}

export type { Executor, ExecutorDeps, RunIO } from './types.ts';
