import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Assignment, RunResult } from '@builder/protocol';
import { describeError } from '../errors.ts';
import { jobVariables, passedEnv, secretVariables } from './job-env.ts';
import { collectOutput, runJobProcess } from './job-process.ts';
import type { Executor, ExecutorDeps, RunIO } from './types.ts';

/** `<runId>-<attempt>`, and a spare run dir (`.next-<pid>-<n>`): the only names cleanup() may delete. */
const RUN_DIR = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-\d+|\.next-\d+(-\d+)?)$/i;
/** Worker environment a job may see; everything else (BUILDER_TOKEN!) stays out. */
const PASSED_ENV = /^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|TZ|TMPDIR|LC_[A-Z_]+)$/;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/**
 * Opening the script.sh of a spare run dir to write the script: it must be there, no symlink, no
 * FIFO; and no O_TRUNC, which would cut another file hard-linked there before fstat could tell.
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
   * Run dirs ready for the next runs, as #prepare makes one (an empty output dir and script.sh), under
   * names of this process's (`.next-PID-N`): made ahead at start, then each run's own dir when its
   * job left it as it was made. A run renames one to its own name and writes its script there, so
   * no inode is made between `assign` and the job's start, and a trivial job's end removes none
   * (on ext4 making and removing them was a tenth of a busy worker's CPU).
   */
  readonly #spare: string[] = [];
  /** Names given to spare dirs so far. */
  #spareNames = 0;
  /** Runs in run() now, and the most there have been at once: how many spare dirs are kept. */
  #running = 0;
  #mostRunning = 1;
  /** The modes #prepare gives the dirs and script.sh (less the umask): what a run finds if nothing touched them. */
  #dirMode = 0;
  #scriptMode = 0;

  constructor(deps: ExecutorDeps) {
    this.#deps = deps;
    this.#workDir = deps.workDir;
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
    this.#makeSpare();
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
      // what was made of it goes (a full disk may take a dir but not the script)
      removeLeftover(dir);
      this.#makeSpareSoon();
      return { kind: 'error', message: `cannot set up the run directory: ${describeError(err)}` };
    }
    this.#mostRunning = Math.max(this.#mostRunning, ++this.#running);
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
      this.#running--;
      if (!this.#keepAsSpare(dir, outputDir)) {
        await removeRunDir(dir).catch((err: unknown) =>
          io.log.warn('executor.run_dir_not_removed', { dir, error: err }),
        );
        // none left for the next run (a job left files here): made after this run's result is out
        this.#makeSpareSoon();
      }
    }
  }

  #prepare(dir: string, outputDir: string, script: string): void {
    const spare = this.#spare.pop();
    if (spare !== undefined) {
      if (this.#takeSpare(spare, dir, outputDir, script)) return;
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
   * Rename a spare run dir to `dir` and write the script into it. A job runs as the worker's user
   * and may have reached for it (its own dir, kept as a spare, or a spare it found): taken only as
   * it was made (an empty output dir and script.sh, nothing else), and the script goes into that
   * file, never through a link or into a FIFO put there meanwhile. False: gone (another worker's
   * cleanup in a shared work dir) or tampered with; whatever is at `dir` then is the caller's to
   * remove.
   */
  #takeSpare(spare: string, dir: string, outputDir: string, script: string): boolean {
    try {
      renameSync(spare, dir);
      if (!asMade(dir, outputDir, this.#dirMode)) return false;
      const fd = openSync(join(dir, 'script.sh'), SCRIPT_INTO);
      try {
        // still the file made for a run: not a hard link to another, not chmodded
        const st = fstatSync(fd);
        if (!(st.isFile() && st.nlink === 1 && st.mode === this.#scriptMode)) return false;
        const bytes = Buffer.from(script);
        // a full disk may take only part of it: never leave half a script to run
        if (writeSync(fd, bytes, 0, bytes.length, 0) !== bytes.length) return false;
        // a kept dir still holds the script before: cut what is left of it after writing (not
        // before: a script as long as that one then frees no block, which ext4 here would discard)
        if (st.size > bytes.length) ftruncateSync(fd, bytes.length);
        return true;
      } finally {
        closeSync(fd);
      }
    } catch {
      return false;
    }
  }

  /**
   * Keep a finished run's dir as a spare if its job left it as it was made and fewer are kept than
   * runs have been going at once; false: the caller removes it.
   */
  #keepAsSpare(dir: string, outputDir: string): boolean {
    // no spare made yet (#makeSpare learns the script's mode): the take would refuse it anyway
    if (this.#spare.length >= this.#mostRunning || this.#scriptMode === 0) return false;
    try {
      if (!asMade(dir, outputDir, this.#dirMode)) return false;
      const spare = this.#spareName();
      renameSync(dir, spare);
      this.#spare.push(spare);
      return true;
    } catch {
      return false;
    }
  }

  /** Make a spare run dir; a failure only means the next run makes its own. */
  #makeSpare(): void {
    if (this.#spare.length > 0) return;
    const spare = this.#spareName();
    try {
      mkdirSync(spare);
      fillRunDir(spare, '');
      this.#dirMode = lstatSync(spare).mode;
      this.#scriptMode = lstatSync(join(spare, 'script.sh')).mode;
      this.#spare.push(spare);
    } catch (err) {
      this.#deps.log.warn('executor.spare_run_dir_failed', { dir: spare, error: err });
      removeLeftover(spare);
    }
  }

  /** A spare for the next run, made on the next turn of the event loop, if none is left. */
  #makeSpareSoon(): void {
    if (this.#spare.length === 0) setImmediate(() => this.#makeSpare());
  }

  #spareName(): string {
    return join(this.#workDir, `.next-${process.pid}-${++this.#spareNames}`);
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

/** A run dir as #prepare made it: an empty output dir and script.sh, nothing more, the dirs of `dirMode`. */
function asMade(dir: string, outputDir: string, dirMode: number): boolean {
  const entries = readdirSync(dir);
  return (
    entries.length === 2 &&
    entries.includes('output') &&
    entries.includes('script.sh') &&
    lstatSync(dir).mode === dirMode &&
    lstatSync(outputDir).mode === dirMode &&
    readdirSync(outputDir).length === 0
  );
}

/** Remove a run dir that was not (fully) made; if even that fails, cleanup() removes it at the next start. */
function removeLeftover(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // its name is one cleanup() removes
  }
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
