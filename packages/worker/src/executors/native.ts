import { createRequire } from 'node:module';

/** What native/spawn.c exports (the worker's own posix_spawn, output reader and group signal). */
export interface Addon {
  spawn(
    file: string,
    argv: string[],
    env: string[],
    cwd: string,
    extraFd: number,
    onExit: (code: number | null, signal: number | null, cpuMs: number | null) => void,
  ): [pid: number, stdout: number, stderr: number, extra: number];
  watch(fd: number, onData: (chunk: Buffer | null, errno?: number) => void): OutputHandle;
  pause(handle: OutputHandle): void;
  resume(handle: OutputHandle): void;
  close(handle: OutputHandle): void;
  killGroup(pgid: number, signal: number): number;
}

/** A job output stream the addon reads (native/spawn.c, watch). */
export type OutputHandle = { readonly __brand: 'OutputHandle' };

/** native/spawn.c, built at install on Linux (native/build.mjs); undefined where it was not. */
export const nativeSpawn: Addon | undefined = loadAddon();

function loadAddon(): Addon | undefined {
  try {
    const addon = createRequire(import.meta.url)('../../native/spawn.node') as Partial<Addon>;
    // a kernel without pidfds gets a module without spawn
    return typeof addon.spawn === 'function' ? (addon as Addon) : undefined;
  } catch {
    return undefined;
  }
}
