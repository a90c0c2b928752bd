import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import { Readable, type Writable } from 'node:stream';
import { getSystemErrorName } from 'node:util';
import { type Addon, nativeSpawn, type OutputHandle } from './native.ts';

/** What runJobProcess needs of the job's process, however it was started. */
export interface JobChild extends EventEmitter {
  /** undefined: Node could not start it; an 'error' event follows. */
  readonly pid?: number | undefined;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** The write end of the child's fd 6, when asked for. */
  readonly fd6: Writable | undefined;
  /**
   * Whether `exitCpuMs` is set before 'exit' (the native spawn: the kernel's figure for the reaped
   * child); Node's child_process has none.
   */
  readonly reportsExitCpu: boolean;
  /** CPU time of the child and of every descendant it waited for, as the kernel counted it. */
  readonly exitCpuMs?: number | undefined;
  // events as ChildProcess: 'exit' (code, signal) once reaped, 'close' (code, signal) once also
  // its stdout and stderr are closed, 'error' (Node only)
}

export interface JobSpawnOptions {
  cwd: string;
  env: Readonly<Record<string, string>>;
  /** Give the child a pipe on fd 6 (its read end). */
  fd6: boolean;
}

/**
 * Start a job's process in its own session (a process group the worker signals as a whole), in
 * `cwd`, with exactly `env`, stdin on /dev/null, stdout and stderr piped. Through posix_spawn
 * (native/spawn.c) when it is built: Node's child_process forks the whole worker first, which
 * costs a millisecond of CPU and of dispatch latency per job. Throws if the native spawn cannot
 * start it; Node's reports that with a pid of undefined and an 'error' event.
 */
export function startJobChild(
  command: string,
  args: readonly string[],
  opts: JobSpawnOptions,
  /** null: Node's child_process even where the native spawn is built (tests run both). */
  addon: Addon | null = nativeSpawn ?? null,
): JobChild {
  return addon ? new NativeJobChild(addon, command, args, opts) : nodeJobChild(command, args, opts);
}

function nodeJobChild(command: string, args: readonly string[], opts: JobSpawnOptions): JobChild {
  const stdio = opts.fd6
    ? ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', 'pipe']
    : ['ignore', 'pipe', 'pipe'];
  const child: ChildProcess = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: stdio as ['ignore', 'pipe', 'pipe'],
  });
  return Object.assign(child, {
    reportsExitCpu: false,
    stdout: child.stdout as Readable,
    stderr: child.stderr as Readable,
    fd6: ((child.stdio as readonly unknown[])[6] ?? undefined) as Writable | undefined,
  });
}

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n as number, name]));

/**
 * One of the job's output streams as the addon reads it: a plain Readable, cheaper to make and to
 * end than the net.Socket Node would wrap the descriptor in. Backpressure as for any Readable: a
 * full buffer pauses the reading, the next _read resumes it.
 */
class NativeOutput extends Readable {
  readonly #addon: Addon;
  readonly #handle: OutputHandle;
  /** The addon is done with the descriptor (its end, a failed read, or a close from here). */
  #closed = false;

  constructor(addon: Addon, fd: number) {
    super({ highWaterMark: 64 * 1024 });
    this.#addon = addon;
    this.#handle = addon.watch(fd, (chunk, errno) => {
      if (chunk) {
        if (!this.push(chunk) && !this.#closed) addon.pause(this.#handle);
        return;
      }
      this.#closed = true;
      if (errno) this.destroy(readError(errno));
      else this.push(null);
    });
  }

  override _read(): void {
    if (!this.#closed) this.#addon.resume(this.#handle);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (!this.#closed) {
      this.#closed = true;
      this.#addon.close(this.#handle);
    }
    done(err);
  }
}

/** What Node's own failed read would be: `read EIO`, with code, errno and syscall. */
function readError(errno: number): NodeJS.ErrnoException {
  const code = getSystemErrorName(-errno);
  return Object.assign(new Error(`read ${code}`), { code, errno: -errno, syscall: 'read' });
}

class NativeJobChild extends EventEmitter implements JobChild {
  readonly pid: number;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly fd6: Socket | undefined;
  readonly reportsExitCpu = true;
  exitCpuMs: number | undefined;
  #open = 3; // the exit and both output streams: 'close' when all three are done
  #result: [number | null, NodeJS.Signals | null] = [null, null];

  constructor(addon: Addon, command: string, args: readonly string[], opts: JobSpawnOptions) {
    super();
    const env: string[] = [];
    for (const [k, v] of Object.entries(opts.env)) env.push(`${k}=${v}`);
    // what Node refuses too: C strings end at the first NUL, so the job would get something else
    for (const s of [command, ...args, ...env, opts.cwd]) {
      if (s.includes('\0')) throw new TypeError('an argument or variable contains a NUL byte');
    }
    const [pid, out, err, extra] = addon.spawn(
      command,
      [command, ...args],
      env,
      opts.cwd,
      opts.fd6 ? 6 : -1,
      (code, signal, cpuMs) => {
        this.exitCpuMs = cpuMs ?? undefined;
        this.#result = [
          code,
          signal === null ? null : ((SIGNAL_NAMES.get(signal) ?? `SIG${signal}`) as NodeJS.Signals),
        ];
        this.emit('exit', ...this.#result);
        this.#closed();
      },
    );
    this.pid = pid;
    let stdout: NativeOutput | undefined;
    try {
      stdout = new NativeOutput(addon, out);
      this.stderr = new NativeOutput(addon, err);
    } catch (e) {
      // started, but its output cannot be read: stop it rather than leave it blocked on a full pipe
      addon.killGroup(pid, constants.signals.SIGKILL);
      if (stdout) stdout.destroy();
      else closeSync(out);
      closeSync(err);
      if (extra >= 0) closeSync(extra);
      throw e;
    }
    this.stdout = stdout;
    this.fd6 = extra >= 0 ? new Socket({ fd: extra, readable: false, writable: true }) : undefined;
    this.stdout.once('close', () => this.#closed());
    this.stderr.once('close', () => this.#closed());
  }

  #closed(): void {
    if (--this.#open === 0) this.emit('close', ...this.#result);
  }
}
