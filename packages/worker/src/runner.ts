import type {
  Assignment,
  Environment,
  Finished,
  HeldRun,
  OutputHeader,
  RunResult,
  RunSummary,
  RunUsage,
  WorkerToServer,
  Logger,
} from '@builder/protocol';
import { type ArtifactTarget, uploadOutput } from './artifacts.ts';
import { type Chunk, ConsoleBuffer, type ConsoleOptions } from './console.ts';
import { describeError } from './errors.ts';
import type { Executor, RunIO, RunInputs, RunSource } from './executors/types.ts';
import { fetchInputs } from './inputs.ts';
import type { Sources } from './source.ts';
import { takeSummary } from './summary.ts';
import { setLongTimeout } from './timers.ts';

/** Where a run's messages go; `ready` is false while there is no welcomed connection. */
export interface Link {
  readonly ready: boolean;
  /** A JSON message; false when it could not be sent (no connection). */
  send(message: WorkerToServer): boolean;
  /**
   * One console chunk as a binary output frame; false when it could not be sent. `headroom`: bytes
   * before `payload` in its buffer that are free for the header (encodeOutputFrameInPlace).
   */
  sendOutput(header: OutputHeader, payload: Buffer, headroom?: number): boolean;
}

export const RunPhase = {
  /** The executor is running the job (or tearing it down). */
  Running: 'running',
  /** The result is known and held until `finished-ack`. */
  Finished: 'finished',
  /** Acknowledged or discarded: the worker forgets it. */
  Done: 'done',
} as const;
export type RunPhase = (typeof RunPhase)[keyof typeof RunPhase];

type Stop = { kind: 'timeout' } | { kind: 'cancelled'; reason: string };

export interface RunDeps {
  readonly job: Assignment;
  readonly executor: Executor;
  readonly link: Link;
  readonly console: ConsoleOptions;
  /** Where the output dir goes; absent: artifacts are not collected (tests of the core). */
  readonly artifacts?: ArtifactTarget;
  /** Fetches a job's git source; absent: a job with a source ends `error`. */
  readonly sources?: Sources;
  /** Where the run runs (sent with `started`); absent: not reported (tests of the core). */
  readonly environment?: () => Promise<Environment>;
  readonly log: Logger;
  readonly now: () => number;
  /** The executor is done with the job: its capacity slot is free. */
  readonly onSettled: (run: Run) => void;
  /** The run reached `done`. */
  readonly onDone: (run: Run) => void;
}

const MAX_ERROR_MESSAGE = 4096;

/** One attempt of one run on this worker, from assign to finished-ack. */
export class Run {
  readonly key: string;
  readonly job: Assignment;
  readonly log: Logger;
  readonly #deps: RunDeps;
  readonly #console: ConsoleBuffer;
  readonly #abort = new AbortController();
  #phase: RunPhase = RunPhase.Running;
  #stop: Stop | undefined;
  #discarded = false;
  #processDone = false;
  #finished: Finished | undefined;
  #settled: Promise<void> = Promise.resolve();
  /** Why the artifacts were not stored, if they were not. */
  #artifactProblem: string | undefined;
  /** What the job wrote to $BUILDER_SUMMARY, and what it cost: sent with the result. */
  #summary: RunSummary | undefined;
  #usage: RunUsage | undefined;

  constructor(deps: RunDeps) {
    this.#deps = deps;
    this.job = deps.job;
    this.key = runKey(deps.job.runId, deps.job.attempt);
    this.log = deps.log.child({ run: deps.job.runId, job: deps.job.job, attempt: deps.job.attempt });
    this.#console = new ConsoleBuffer({
      options: deps.console,
      now: deps.now,
      onChunk: (chunk) => this.#sendChunk(chunk),
      onSinkError: (err) => this.log.warn('console.sink_error', { error: err }),
    });
  }

  get phase(): RunPhase {
    return this.#phase;
  }
  /** Occupies a capacity slot (also while a discarded job is being killed). */
  get executing(): boolean {
    return this.#phase === RunPhase.Running;
  }
  /** Resolves once the executor returned and the result is held (or the run was discarded). */
  get settled(): Promise<void> {
    return this.#settled;
  }
  get bufferedBytes(): number {
    return this.#console.bufferedBytes;
  }
  get maxBufferedBytes(): number {
    return this.#console.maxBufferedBytes;
  }

  /** What hello reports; undefined once the run is of no interest to the server. */
  held(): HeldRun | undefined {
    if (this.#discarded || this.#phase === RunPhase.Done) return undefined;
    const { runId, attempt } = this.job;
    return { runId, attempt, lastSeq: this.#console.lastSeq, finished: this.#phase === RunPhase.Finished };
  }

  start(): void {
    const job = this.job;
    let commit: string | undefined;
    let environment: Environment | undefined;
    const io: RunIO = {
      stdout: this.#console.stdout,
      stderr: this.#console.stderr,
      note: (text) => this.#console.note(text),
      signal: this.#abort.signal,
      killGraceMs: job.killGraceSec * 1000,
      started: () => {
        const startedAt = this.#deps.now();
        this.#deps.link.send({
          type: 'started',
          runId: job.runId,
          attempt: job.attempt,
          startedAt,
          ...(commit && { commit }),
          ...(environment && { environment }),
        });
        this.log.info('run.started');
      },
      collectOutput: async (dir) => {
        if (this.#discarded) return;
        this.#summary = await takeSummary(dir, io.note);
        const target = this.#deps.artifacts;
        if (!target) return;
        this.#artifactProblem = await uploadOutput(dir, job, target, { note: io.note, log: this.log });
        if (this.#artifactProblem) this.#console.note(`[builder] ${this.#artifactProblem}`);
      },
      refuseOutput: (reason) => {
        if (this.#discarded) return;
        this.#artifactProblem = `artifacts refused: ${reason}`;
        this.#console.note(`[builder] ${this.#artifactProblem}`);
      },
      usage: (usage) => {
        this.#usage = usage;
      },
      log: this.log,
    };
    const cancelTimeout = setLongTimeout(() => {
      this.#halt({ kind: 'timeout' }, `[builder] timeout after ${job.timeoutSec}s: killing the job`);
    }, job.timeoutSec * 1000);
    const inputs = this.#inputs(io);
    if (typeof inputs === 'string') {
      this.#settled = this.#execute(io, cancelTimeout, { kind: 'error', message: inputs });
      return;
    }
    this.#settled = Promise.all([this.#fetchSource(), this.#environment()]).then(([source, env]) => {
      environment = env;
      if (typeof source === 'string') return this.#execute(io, cancelTimeout, { kind: 'error', message: source });
      commit = source?.commit;
      const withSource = source ? { ...io, source } : io;
      return this.#execute(inputs ? { ...withSource, inputs } : withSource, cancelTimeout);
    });
  }

  /** The run's inputs, fetched when the executor has made their dir; a message when this worker cannot. */
  #inputs(io: RunIO): RunInputs | string | undefined {
    const job = this.job;
    if (job.inputs.length === 0) return undefined;
    const target = this.#deps.artifacts;
    if (!target) return 'this worker cannot fetch inputs (it has no server URL for transfers)';
    return {
      count: job.inputs.length,
      place: (dir) => fetchInputs(job, dir, target, { signal: this.#abort.signal, note: io.note }),
    };
  }

  /** Where the run runs; a base that cannot be described is said in the console, not fatal to the build. */
  async #environment(): Promise<Environment | undefined> {
    const describe = this.#deps.environment;
    if (!describe) return undefined;
    try {
      return await describe();
    } catch (err) {
      const why = describeError(err);
      this.#console.note(`[builder] the build environment is not on record: ${why}`);
      this.log.warn('run.environment_unknown', { error: why });
      return undefined;
    }
  }

  /** Outside any sandbox, before the job: the commit to build, or why there is none (a message). */
  async #fetchSource(): Promise<RunSource | string | undefined> {
    const spec = this.job.source;
    if (!spec) return undefined;
    const sources = this.#deps.sources;
    if (!sources) return 'this worker cannot fetch sources';
    try {
      const commit = await sources.fetch(spec, this.#abort.signal);
      this.#console.note(`[builder] source ${spec.git} ${spec.ref} at ${commit}`);
      this.log.info('run.source', { git: spec.git, ref: spec.ref, commit });
      return { ref: spec.ref, commit, checkout: (dir) => sources.checkout(spec, commit, dir) };
    } catch (err) {
      return describeError(err);
    }
  }

  async #execute(io: RunIO, cancelTimeout: () => void, failed?: RunResult): Promise<void> {
    let result: RunResult;
    const missing = this.job.missingSecrets;
    try {
      // a job that asked for a secret the server does not have would build without it: not at all
      result = failed
        ? failed
        : missing.length > 0
          ? {
              kind: 'error',
              message: `secret${missing.length === 1 ? '' : 's'} ${missing.join(', ')} not set on the server (builder-client secret set NAME)`,
            }
          : io.signal.aborted
            ? { kind: 'error', message: 'stopped before the job started' }
            : await this.#deps.executor.run(this.job, io);
    } catch (err) {
      result = { kind: 'error', message: `executor ${this.#deps.executor.name} failed: ${describeError(err)}` };
    }
    // The job is over: a cancel or timeout from now on must not rewrite how it ended.
    this.#processDone = true;
    cancelTimeout();
    if (!this.#discarded) {
      if (this.#stop) result = this.#stop;
      // a build whose artifacts were refused did not produce what it claims; a failure stays a failure
      else if (this.#artifactProblem && result.kind === 'exited' && result.code === 0) {
        result = { kind: 'error', message: this.#artifactProblem };
      }
      await this.#console.close();
    }
    if (this.#discarded) {
      this.#console.discard();
      this.#phase = RunPhase.Done;
      this.#deps.onSettled(this);
      this.#deps.onDone(this);
      return;
    }
    if (result.kind === 'error' && result.message.length > MAX_ERROR_MESSAGE) {
      result = { kind: 'error', message: `${result.message.slice(0, MAX_ERROR_MESSAGE - 1)}…` };
    }
    const { runId, attempt } = this.job;
    this.#finished = {
      type: 'finished',
      runId,
      attempt,
      lastSeq: this.#console.lastSeq,
      result,
      finishedAt: this.#deps.now(),
      ...(this.#summary && { summary: this.#summary }),
      ...(this.#usage && { usage: this.#usage }),
    };
    this.#phase = RunPhase.Finished;
    this.log.info('run.finished', { result, lastSeq: this.#finished.lastSeq });
    this.#deps.onSettled(this);
    this.#deps.link.send(this.#finished);
  }

  cancel(reason: string): void {
    this.#halt({ kind: 'cancelled', reason }, `[builder] cancelled (${reason}): killing the job`);
  }

  #halt(stop: Stop, note: string): void {
    if (this.#phase !== RunPhase.Running || this.#processDone || this.#stop || this.#discarded) return;
    this.#stop = stop;
    this.log.info('run.stopping', { stop: stop.kind });
    this.#console.note(note);
    this.#abort.abort(stop);
  }

  /** The server says the attempt is stale or already recorded: kill it and send nothing more. */
  discard(): void {
    if (this.#discarded || this.#phase === RunPhase.Done) return;
    this.#discarded = true;
    this.log.info('run.discarded', { phase: this.#phase });
    this.#console.discard();
    if (this.#phase === RunPhase.Running) {
      this.#abort.abort({ kind: 'discarded' });
      return;
    }
    this.#phase = RunPhase.Done;
    this.#deps.onDone(this);
  }

  ack(seq: number): void {
    this.#console.ack(seq);
  }

  /** Re-attached after a reconnect: the server has everything up to ackedSeq. */
  resume(ackedSeq: number): void {
    if (ackedSeq < this.#console.ackedSeq) {
      this.log.warn('console.ack_went_back', {
        hint: 'resending what is still held',
        ackedSeq,
        previouslyAcked: this.#console.ackedSeq,
      });
    }
    this.#console.ack(ackedSeq);
    this.resend(ackedSeq + 1);
  }

  /** Send held output from `fromSeq`, then the result if there is one. */
  resend(fromSeq: number): void {
    if (this.#discarded) return;
    if (fromSeq <= this.#console.ackedSeq) {
      this.log.warn('console.resend_of_dropped_output', {
        fromSeq,
        ackedSeq: this.#console.ackedSeq,
      });
    }
    for (const chunk of this.#console.held(fromSeq)) if (!this.#sendOutput(chunk)) return;
    if (this.#finished) this.#deps.link.send(this.#finished);
  }

  finishedAck(): void {
    if (this.#phase !== RunPhase.Finished) {
      this.log.warn('run.finished_ack_without_result_ignored', { phase: this.#phase });
      return;
    }
    this.#phase = RunPhase.Done;
    this.#deps.onDone(this);
  }

  #sendChunk(chunk: Chunk): void {
    if (this.#deps.link.ready) this.#sendOutput(chunk);
  }

  #sendOutput(chunk: Chunk): boolean {
    const { runId, attempt } = this.job;
    const { seq, ts, stream, data, headroom } = chunk;
    return this.#deps.link.sendOutput({ type: 'output', runId, attempt, seq, ts, stream }, data, headroom);
  }
}

export function runKey(runId: string, attempt: number): string {
  return `${runId}/${attempt}`;
}
