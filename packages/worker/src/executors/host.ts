import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Assignment, RunResult } from '@builder/protocol';
import { describeError } from '../errors.ts';
import { groupStopper } from './process-group.ts';
import type { Executor, ExecutorDeps, RunIO } from './types.ts';

/** `<runId>-<attempt>`: the only names cleanup() may delete. */
const RUN_DIR = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-\d+$/i;
/** Worker environment a job may see; everything else (BUILDER_TOKEN!) stays out. */
const PASSED_ENV = /^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|TZ|TMPDIR|LC_[A-Z_]+)$/;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** After the job exited, how long a pipe held by an escaped process may stay open (beyond the grace). */
const PIPE_LINGER_MS = 2000;

/**
 * Runs the script as the worker's user in a fresh directory: for development,
 * tests and trusted jobs. No isolation beyond a process group.
 */
export class HostExecutor implements Executor {
  readonly name = 'host';
  readonly #workDir: string;
  readonly #platform: string;
  readonly #baseEnv: Readonly<Record<string, string>>;
  readonly #deps: ExecutorDeps;

  constructor(deps: ExecutorDeps) {
    this.#deps = deps;
    this.#workDir = deps.workDir;
    this.#platform = deps.platform;
    const env: Record<string, string> = { PATH: DEFAULT_PATH };
    for (const [k, v] of Object.entries(deps.env)) if (v !== undefined && PASSED_ENV.test(k)) env[k] = v;
    this.#baseEnv = env;
  }

  async cleanup(): Promise<void> {
    await mkdir(this.#workDir, { recursive: true });
    for (const entry of await readdir(this.#workDir)) {
      if (!RUN_DIR.test(entry)) continue;
      this.#deps.log.info('removing stale run directory', { dir: join(this.#workDir, entry) });
      await rm(join(this.#workDir, entry), { recursive: true, force: true });
    }
  }

  async run(job: Assignment, io: RunIO): Promise<RunResult> {
    const dir = join(this.#workDir, `${job.runId}-${job.attempt}`);
    const outputDir = join(dir, 'output');
    // Synchronous on purpose: three tiny syscalls are cheaper than thread-pool round trips
    // on the path from assign to spawn.
    try {
      this.#prepare(dir, outputDir, job.script);
    } catch (err) {
      return { kind: 'error', message: `cannot set up the run directory: ${describeError(err)}` };
    }
    try {
      const result = await this.#execute(job, dir, outputDir, io);
      try {
        await io.collectOutput(outputDir);
      } catch (err) {
        io.note(`[builder] collecting ${outputDir} failed: ${describeError(err)}`);
      }
      return result;
    } finally {
      await rm(dir, { recursive: true, force: true }).catch((err: unknown) =>
        io.log.warn('cannot remove run directory', { dir, err }),
      );
    }
  }

  #prepare(dir: string, outputDir: string, script: string): void {
    try {
      mkdirSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') mkdirSync(this.#workDir, { recursive: true });
      else if (code === 'EEXIST') rmSync(dir, { recursive: true, force: true });
      else throw err;
      mkdirSync(dir);
    }
    mkdirSync(outputDir);
    writeFileSync(join(dir, 'script.sh'), script, { mode: 0o755 });
  }

  #execute(job: Assignment, dir: string, outputDir: string, io: RunIO): Promise<RunResult> {
    const env = {
      ...this.#baseEnv,
      ...job.params,
      BUILDER_JOB: job.job,
      BUILDER_RUN: String(job.number),
      BUILDER_RUN_ID: job.runId,
      BUILDER_ATTEMPT: String(job.attempt),
      BUILDER_PLATFORM: this.#platform,
      BUILDER_OUTPUT: outputDir,
    };
    const [command, args] = job.script.startsWith('#!') ? [join(dir, 'script.sh'), []] : ['/bin/sh', ['script.sh']];

    return new Promise<RunResult>((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(command, args, { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (err) {
        resolve({ kind: 'error', message: `cannot start ${command}: ${describeError(err)}` });
        return;
      }
      const pid = child.pid;
      if (pid === undefined) {
        child.once('error', (err) =>
          resolve({ kind: 'error', message: `cannot start ${command}: ${describeError(err)}` }),
        );
        return;
      }
      io.started();
      const stdout = child.stdout as Readable;
      const stderr = child.stderr as Readable;
      stdout.pipe(io.stdout);
      stderr.pipe(io.stderr);

      const group = groupStopper(pid, io.killGraceMs, (text) => io.note(text));
      let readError: string | undefined;
      let lingerTimer: NodeJS.Timeout | undefined;
      const onReadError = (name: string) => (err: Error) => {
        if (readError !== undefined) return;
        readError = `cannot read the job's ${name}: ${describeError(err)}`;
        io.note(`[builder] ${readError}; stopping the job`);
        group.stop();
      };
      stdout.on('error', onReadError('stdout'));
      stderr.on('error', onReadError('stderr'));
      child.on('error', (err) => io.log.warn('job process error', { err }));

      const onAbort = () => group.stop();
      if (io.signal.aborted) onAbort();
      else io.signal.addEventListener('abort', onAbort, { once: true });

      // A process that left the group (setsid) can hold the pipes open forever; but a pipe
      // that is paused for backpressure is not lingering, it is waiting for acks.
      const checkLinger = () => {
        if (stdout.isPaused() || stderr.isPaused()) {
          lingerTimer = setTimeout(checkLinger, PIPE_LINGER_MS);
          return;
        }
        io.note(
          '[builder] the job exited but its output is still held open by a process outside its group; closing it',
        );
        stdout.destroy();
        stderr.destroy();
      };

      child.once('exit', () => {
        // Anything still in the group would keep the console open: stop it the same way.
        if (group.stop()) io.note('[builder] the job exited but left processes running in its group; stopping them');
        lingerTimer = setTimeout(checkLinger, io.killGraceMs + PIPE_LINGER_MS);
      });
      child.once('close', (code, signal) => {
        if (lingerTimer) clearTimeout(lingerTimer);
        io.signal.removeEventListener('abort', onAbort);
        // the console is closed, but a process of the group that ignores TERM may still run
        void group.settled().then(() => {
          group.dispose();
          if (readError !== undefined) resolve({ kind: 'error', message: readError });
          else if (code !== null) resolve({ kind: 'exited', code });
          else resolve({ kind: 'signalled', signal: signal ?? 'unknown' });
        });
      });
    });
  }
}
