import type { Writable } from 'node:stream';
import type { Assignment, RunResult, RunUsage, Logger } from '@builder/protocol';
import type { BaseProbe } from '../environment/recorder.ts';

/**
 * What an executor gets for one run. The worker core owns all of it: console
 * numbering, the unacknowledged window, timeouts and cancellation.
 */
export interface RunIO {
  /**
   * The job's console sinks. Their write callbacks are held while the
   * unacknowledged window is full, so `child.stdout.pipe(io.stdout)` stops
   * reading the pipe (and the job blocks) instead of buffering.
   * Ending them is optional: the core ends whatever is left open after `run()`.
   */
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** A line from the worker itself, shown in the console as stream `system`. */
  note(text: string): void;
  /**
   * Aborted on timeout, cancel, a stale attempt or worker shutdown: stop the
   * whole job (TERM, wait `killGraceMs`, KILL) and resolve `run()`. The core
   * decides what the result then is; the executor reports what it saw.
   */
  readonly signal: AbortSignal;
  readonly killGraceMs: number;
  /** Call once, right after the job's process exists (dispatch latency is measured from here). */
  started(): void;
  /**
   * Hook for artifacts: called with the job's output directory (as seen from
   * the worker) after the job ended and before the sandbox is torn down.
   */
  collectOutput(outputDir: string): Promise<void>;
  /**
   * The output dir cannot be handed over safely (replaced by a link, or the sandbox could not be
   * stopped): the run's artifacts are refused for `reason`, which the core says in the console,
   * and a run that otherwise succeeded ends as an error, as for any artifact refusal.
   */
  refuseOutput(reason: string): void;
  /**
   * What the job cost (CPU time, peak memory), measured by the executor; a later call replaces an
   * earlier one (the chroot executor's cgroup figures replace the sampled ones).
   */
  usage?(usage: RunUsage): void;
  readonly log: Logger;
  /** For a job with a source: the commit it was fetched at, to be checked out into the run's directory. */
  readonly source?: RunSource;
  /** For a run with inputs: fetches them (outside the sandbox, SHA-256 checked) into a new dir. */
  readonly inputs?: RunInputs;
}

/** The run's input files; `place` writes them into `dir` (the job's $BUILDER_INPUT). */
export interface RunInputs {
  readonly count: number;
  place(dir: string): Promise<void>;
}

/** The job's source, fetched before the executor runs; `checkout` writes its tree into a new dir. */
export interface RunSource {
  readonly ref: string;
  readonly commit: string;
  checkout(dir: string): Promise<void>;
}

/**
 * A way to run jobs: `host` (a temp dir), `chroot` (overlay + namespaces +
 * cgroups) or `jail` (FreeBSD). The worker core only ever talks to this.
 */
export interface Executor {
  readonly name: string;
  /** At worker start: remove what a crashed worker left behind (run dirs, mounts, jails). */
  cleanup(): Promise<void>;
  /**
   * Run one attempt to its end. Resolves after the job's output was written to
   * the sinks and the sandbox is gone. Setup failures resolve to
   * `{kind:'error', message}` naming what failed (path, errno); `run()` should
   * not reject, but if it does the core reports an `error` result.
   */
  run(job: Assignment, io: RunIO): Promise<RunResult>;
  /** The base each sandbox is made from (chroot, jail), for the run's environment record; host: none. */
  base?(): BaseProbe | undefined;
}

/** What every executor is built from. */
export interface ExecutorDeps {
  /** Absolute directory the executor may use for run dirs. */
  readonly workDir: string;
  readonly platform: string;
  readonly log: Logger;
  /** The worker's environment; executors pass only a safe subset to jobs. */
  readonly env: NodeJS.ProcessEnv;
}
