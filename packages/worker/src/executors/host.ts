import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Assignment, RunResult } from '@builder/protocol';
import { describeError } from '../errors.ts';
import { jobVariables, passedEnv, secretVariables } from './job-env.ts';
import { collectOutput, runJobProcess } from './job-process.ts';
import type { Executor, ExecutorDeps, RunIO } from './types.ts';

/** `<runId>-<attempt>`, and a run dir made ahead (`.next-<pid>`): the only names cleanup() may delete. */
const RUN_DIR = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-\d+|\.next-\d+)$/i;
/** Worker environment a job may see; everything else (BUILDER_TOKEN!) stays out. */
const PASSED_ENV = /^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|TZ|TMPDIR|LC_[A-Z_]+)$/;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/**
 * Opening the empty script.sh of a run dir made ahead to write the script: it must be there, no
 * symlink, no FIFO; and no O_TRUNC, which would cut another file hard-linked there before fstat
 * could tell.
 */
const SCRIPT_INTO = constants.O_WRONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

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
  /**
   * A run dir made ahead, as #prepare makes one (an empty output dir, an empty script.sh), under a
   * name of this process's: the next run renames it to its own name and writes its script there,
   * so making three inodes is not on the way from `assign` to the job's start.
   */
  readonly #next: string;
  #nextReady = false;
  /** The mode its script.sh got (0755 less the umask): what a run finds there if nothing touched it. */
  #nextScriptMode = 0;

  constructor(deps: ExecutorDeps) {
    this.#deps = deps;
    this.#workDir = deps.workDir;
    this.#next = join(deps.workDir, `.next-${process.pid}`);
    this.#platform = deps.platform;
    this.#baseEnv = { PATH: DEFAULT_PATH, ...passedEnv(deps.env, PASSED_ENV) };
  }

  async cleanup(): Promise<void> {
    await mkdir(this.#workDir, { recursive: true });
    for (const entry of await readdir(this.#workDir)) {
      if (!RUN_DIR.test(entry)) continue;
      this.#deps.log.info('executor.stale_run_dir_removed', { dir: join(this.#workDir, entry) });
      await rm(join(this.#workDir, entry), { recursive: true, force: true });
    }
    this.#makeNext();
  }

  async run(job: Assignment, io: RunIO): Promise<RunResult> {
    // running it as the worker's user would hide that nothing was isolated: refuse, plainly
    if (job.prepare !== undefined) {
      return {
        kind: 'error',
        message:
          'the host executor cannot run a prepare step: it has no root to give it and no network to take ' +
          'from the build (it runs everything as the worker user); run the job on a chroot worker',
      };
    }
    const dir = join(this.#workDir, `${job.runId}-${job.attempt}`);
    const outputDir = join(dir, 'output');
    // Synchronous on purpose: a few tiny syscalls are cheaper than thread-pool round trips
    // on the path from assign to spawn.
    try {
      this.#prepare(dir, outputDir, job.script);
    } catch (err) {
      return { kind: 'error', message: `cannot set up the run directory: ${describeError(err)}` };
    }
    // the next run's dir, while this one's job starts (the event loop turns before it can end)
    setImmediate(() => this.#makeNext());
    const sourceDir = join(dir, 'source');
    const inputDir = join(dir, 'input');
    try {
      try {
        if (io.source) await io.source.checkout(sourceDir);
        if (io.inputs) await io.inputs.place(inputDir);
      } catch (err) {
        return { kind: 'error', message: describeError(err) };
      }
      const result = await this.#execute(job, dir, outputDir, io, sourceDir, io.inputs && inputDir);
      await collectOutput(io, outputDir);
      return result;
    } finally {
      await removeRunDir(dir).catch((err: unknown) => io.log.warn('executor.run_dir_not_removed', { dir, error: err }));
    }
  }

  #prepare(dir: string, outputDir: string, script: string): void {
    if (this.#nextReady) {
      this.#nextReady = false;
      if (this.#takeNext(dir, outputDir, script)) return;
      rmSync(dir, { recursive: true, force: true });
    }
    try {
      mkdirSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') mkdirSync(this.#workDir, { recursive: true });
      else if (code === 'EEXIST') rmSync(dir, { recursive: true, force: true });
      else throw err;
      mkdirSync(dir);
    }
    fillRunDir(dir, script);
  }

  /**
   * Rename the run dir made ahead to `dir` and write the script into it. A job runs as the worker's
   * user and may have reached for it: taken only as it was made (an empty output dir and the empty
   * script.sh, nothing else), and the script goes into that file, never through a link or into a
   * FIFO put there meanwhile. False: gone (another worker's cleanup in a shared work dir) or
   * tampered with; whatever is at `dir` then is the caller's to remove.
   */
  #takeNext(dir: string, outputDir: string, script: string): boolean {
    try {
      renameSync(this.#next, dir);
      if (!asMade(dir, outputDir)) return false;
      const fd = openSync(join(dir, 'script.sh'), SCRIPT_INTO);
      try {
        // still the empty file made ahead: not a hard link to another, not chmodded
        const st = fstatSync(fd);
        if (!(st.isFile() && st.nlink === 1 && st.size === 0 && st.mode === this.#nextScriptMode)) return false;
        writeFileSync(fd, script);
        return true;
      } finally {
        closeSync(fd);
      }
    } catch {
      return false;
    }
  }

  /** Make the next run's dir ahead if there is none; a failure only means the next run makes its own. */
  #makeNext(): void {
    if (this.#nextReady) return;
    try {
      rmSync(this.#next, { recursive: true, force: true });
      mkdirSync(this.#next);
      fillRunDir(this.#next, '');
      this.#nextScriptMode = lstatSync(join(this.#next, 'script.sh')).mode;
      this.#nextReady = true;
    } catch (err) {
      this.#deps.log.warn('executor.next_run_dir_failed', { dir: this.#next, error: err });
    }
  }

  #execute(
    job: Assignment,
    dir: string,
    outputDir: string,
    io: RunIO,
    sourceDir: string,
    inputDir: string | undefined,
  ): Promise<RunResult> {
    const env = {
      ...this.#baseEnv,
      ...jobVariables(job, this.#platform, outputDir, io.source && { run: io.source, dir: sourceDir }, inputDir),
      ...secretVariables(job),
    };
    const [command, args] = job.script.startsWith('#!') ? [join(dir, 'script.sh'), []] : ['/bin/sh', ['script.sh']];

    return runJobProcess(command, args, { cwd: dir, env }, io);
  }
}

/** What a new run dir holds: its empty output dir and the script (0755 less the umask). */
function fillRunDir(dir: string, script: string): void {
  mkdirSync(join(dir, 'output'));
  writeFileSync(join(dir, 'script.sh'), script, { mode: 0o755 });
}

/** A run dir made ahead holds what #makeNext put there and nothing more: an empty output dir and script.sh. */
function asMade(dir: string, outputDir: string): boolean {
  const entries = readdirSync(dir);
  return (
    entries.length === 2 &&
    entries.includes('output') &&
    entries.includes('script.sh') &&
    lstatSync(outputDir).isDirectory() &&
    readdirSync(outputDir).length === 0
  );
}

/**
 * Remove a run's directory. Most jobs leave only what #prepare made (the script and an empty output
 * dir, whose artifacts were sent): three synchronous syscalls then, rather than a recursive walk of
 * thread-pool round trips between the job's exit and its result. Anything else (files left behind,
 * a symlink where a dir was) is left to the thorough rm, which follows no symlink.
 */
async function removeRunDir(dir: string): Promise<void> {
  try {
    unlinkSync(join(dir, 'script.sh'));
    rmdirSync(join(dir, 'output'));
    rmdirSync(dir);
    return;
  } catch {
    // more than the usual three entries: the thorough way below
  }
  await rm(dir, { recursive: true, force: true });
}
