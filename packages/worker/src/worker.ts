import { EnvironmentRecorder } from './environment/recorder.ts';
import {
  type Assignment,
  type HeldRun,
  LIMITS,
  type ServerToWorker,
  type Welcome,
  type WorkerInfo,
  type Logger,
} from '@builder/protocol';
import { Sources } from './source.ts';
import { type Connect, Connection } from './connection.ts';
import { ExitCode, type ServerRefusedError, type UntrustedServerError } from './errors.ts';
import { nativeSpawn } from './executors/native.ts';
import type { Executor } from './executors/types.ts';
import type { WorkerOptions } from './options.ts';
import { Run, RunPhase, runKey } from './runner.ts';
import { preciseNow } from './timers.ts';

export const WorkerState = {
  Created: 'created',
  Running: 'running',
  /** No new runs; exits once every held run is acknowledged. */
  Draining: 'draining',
  /** Cancelling everything and reporting what it can. */
  Stopping: 'stopping',
  Stopped: 'stopped',
} as const;
export type WorkerState = (typeof WorkerState)[keyof typeof WorkerState];

export interface WorkerDeps {
  readonly options: WorkerOptions;
  readonly executor: Executor;
  readonly log: Logger;
  /** Epoch milliseconds, sub-millisecond precision. */
  readonly now?: () => number;
  readonly random?: () => number;
  /** Opens the WebSocket to the server; default: a real one (a simulation passes its own network). */
  readonly connect?: Connect;
}

export interface RunSnapshot {
  readonly runId: string;
  readonly attempt: number;
  readonly phase: RunPhase;
  readonly bufferedBytes: number;
  readonly maxBufferedBytes: number;
}

/** Extra time, beyond the longest kill grace, a forced stop waits for jobs to die. */
const STOP_SLACK_MS = 3000;

/**
 * The worker: the registry of runs and what every server message does to it.
 * It knows nothing of sockets (Connection) or processes (Executor).
 */
/** How often unused source mirrors are looked for, besides at start. */
const MIRROR_SWEEP_MS = 86_400_000;

export class Worker {
  readonly #o: WorkerOptions;
  readonly #executor: Executor;
  readonly #sources: Sources;
  /** Daily removal of source mirrors no run used for --git-mirror-days. */
  #mirrorTimer: NodeJS.Timeout | undefined;
  readonly #environment: EnvironmentRecorder;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #connection: Connection;
  readonly #runs = new Map<string, Run>();
  #executing = 0;
  #state: WorkerState = WorkerState.Created;
  #exitCode: ExitCode | undefined;
  #resolveExit!: (code: ExitCode) => void;
  readonly exited: Promise<ExitCode> = new Promise((resolve) => (this.#resolveExit = resolve));
  /** Called whenever a run is forgotten (drain and stop wait on it). */
  #onRunDone: (() => void) | undefined;

  constructor(deps: WorkerDeps) {
    this.#o = deps.options;
    this.#executor = deps.executor;
    this.#sources = new Sources({ workDir: this.#o.workDir, timeoutMs: this.#o.gitTimeoutMs });
    this.#environment = new EnvironmentRecorder({ worker: this.#o.name, executor: deps.executor });
    this.#log = deps.log;
    this.#now = deps.now ?? preciseNow;
    this.#connection = new Connection({
      options: deps.options.connection,
      log: deps.log,
      ...(deps.random ? { random: deps.random } : {}),
      ...(deps.connect ? { connect: deps.connect } : {}),
      handler: {
        workerInfo: () => this.#info(),
        onWelcome: (w) => this.#welcome(w),
        onMessage: (m) => this.#message(m),
        onDisconnect: () => undefined,
        onRefused: (err) => this.#refused(err),
      },
    });
  }

  get state(): WorkerState {
    return this.#state;
  }

  /** Remove leftovers of a crashed worker, then connect. */
  async start(): Promise<void> {
    if (this.#state !== WorkerState.Created) return;
    try {
      await this.#executor.cleanup();
    } catch (err) {
      // Not fatal: each run will report the same problem as its own setup error.
      this.#log.error('executor.cleanup_failed', {
        executor: this.#executor.name,
        workDir: this.#o.workDir,
        error: err,
      });
    }
    if (this.#state !== WorkerState.Created) return;
    this.#state = WorkerState.Running;
    this.#log.info('worker.starting', {
      platform: this.#o.platform,
      capacity: this.#o.capacity,
      executor: this.#executor.name,
      server: this.#o.connection.url,
      // posix_spawn (native/spawn.c) when it was built at install, else Node's slower fork
      jobSpawn: nativeSpawn ? 'posix_spawn' : 'child_process',
    });
    this.#connection.start();
    if (this.#o.gitMirrorMaxAgeMs > 0) {
      void this.#expireMirrors();
      this.#mirrorTimer = setInterval(() => void this.#expireMirrors(), MIRROR_SWEEP_MS);
      this.#mirrorTimer.unref();
    }
  }

  async #expireMirrors(): Promise<void> {
    try {
      const removed = await this.#sources.expire(this.#o.gitMirrorMaxAgeMs);
      for (const mirror of removed)
        this.#log.info('source.mirror_removed', { mirror, unusedDays: this.#o.gitMirrorMaxAgeMs / 86_400_000 });
    } catch (err) {
      this.#log.warn('source.mirror_expiry_failed', { error: err });
    }
  }

  /** Take no new runs; exit 0 once every run finished and its result was acknowledged. */
  drain(): void {
    if (this.#state !== WorkerState.Running && this.#state !== WorkerState.Created) return;
    this.#state = WorkerState.Draining;
    this.#log.info('worker.draining', { runs: this.#runs.size, hint: 'finishing running jobs, rejecting new ones' });
    this.#onRunDone = () => {
      if (this.#runs.size === 0) void this.#finish(ExitCode.Ok);
    };
    this.#onRunDone();
  }

  /** Cancel every job, report the results if the server is reachable, then stop. */
  async stop(reason = 'worker shutting down', code: ExitCode = ExitCode.Failure): Promise<ExitCode> {
    if (this.#state === WorkerState.Stopping || this.#state === WorkerState.Stopped) return this.exited;
    this.#state = WorkerState.Stopping;
    this.#log.warn('worker.stopping', { runs: this.#runs.size, reason, hint: 'cancelling running jobs' });
    const runs = [...this.#runs.values()];
    for (const run of runs) run.cancel(reason);
    const grace = Math.max(0, ...runs.map((r) => r.job.killGraceSec * 1000));
    await within(Promise.all(runs.map((r) => r.settled)), grace + STOP_SLACK_MS);
    if (this.#connection.ready && this.#runs.size > 0) {
      await within(
        new Promise<void>((resolve) => {
          this.#onRunDone = () => this.#runs.size === 0 && resolve();
          this.#onRunDone();
        }),
        this.#o.shutdownAckTimeoutMs,
      );
    }
    await this.#finish(code);
    return code;
  }

  /** For tests and diagnostics. */
  snapshot(): RunSnapshot[] {
    return [...this.#runs.values()].map((r) => ({
      runId: r.job.runId,
      attempt: r.job.attempt,
      phase: r.phase,
      bufferedBytes: r.bufferedBytes,
      maxBufferedBytes: r.maxBufferedBytes,
    }));
  }

  async #finish(code: ExitCode): Promise<void> {
    if (this.#exitCode !== undefined) return;
    this.#exitCode = code;
    this.#state = WorkerState.Stopped;
    this.#onRunDone = undefined;
    clearInterval(this.#mirrorTimer);
    await this.#connection.close();
    for (const run of this.#runs.values()) run.discard();
    this.#log.info('worker.stopped', { exitCode: code });
    this.#resolveExit(code);
  }

  #info(): WorkerInfo {
    const running: HeldRun[] = [];
    for (const run of this.#runs.values()) {
      const held = run.held();
      if (held) running.push(held);
    }
    if (running.length > LIMITS.maxRunningPerWorker) {
      // The rest go unmentioned, so the server's welcome will have them killed: better than a hello it refuses.
      this.#log.warn('hello.too_many_held', { held: running.length, max: LIMITS.maxRunningPerWorker });
      running.length = LIMITS.maxRunningPerWorker;
    }
    const { name, platform, labels, capacity } = this.#o;
    return { name, platform, labels: [...labels], capacity, executor: this.#executor.name, running };
  }

  #welcome(welcome: Welcome): void {
    const told = new Map(welcome.reattach.map((r) => [runKey(r.runId, r.attempt), r]));
    for (const run of [...this.#runs.values()]) {
      if (!run.held()) continue;
      const reattach = told.get(run.key);
      // A run the server does not mention is one it does not expect from us: stale.
      const action = reattach?.action ?? 'kill';
      run.log.info('run.reattach', { action, ackedSeq: reattach?.ackedSeq });
      if (reattach && action === 'continue') run.resume(reattach.ackedSeq);
      else run.discard();
    }
  }

  #message(message: ServerToWorker): void {
    if (message.type === 'assign') return this.#assign(message.run);
    const run = this.#runs.get(runKey(message.runId, message.attempt));
    if (!run) {
      this.#log.debug('run.not_held_ignored', {
        type: message.type,
        run: message.runId,
        attempt: message.attempt,
      });
      return;
    }
    switch (message.type) {
      case 'ack':
        return run.ack(message.seq);
      case 'finished-ack':
        return run.finishedAck();
      case 'cancel':
        return run.cancel(message.reason);
      case 'resend':
        return run.resend(message.fromSeq);
      default: {
        const never: never = message;
        throw new Error(`unhandled message ${JSON.stringify(never)}`);
      }
    }
  }

  #assign(job: Assignment): void {
    const key = runKey(job.runId, job.attempt);
    if (this.#runs.has(key)) {
      this.#log.warn('run.duplicate_assign_ignored', { run: job.runId, attempt: job.attempt });
      return;
    }
    if (this.#state !== WorkerState.Running || this.#executing >= this.#o.capacity) {
      const reason =
        this.#state !== WorkerState.Running
          ? `worker is ${this.#state}`
          : `worker is at capacity (${this.#o.capacity})`;
      this.#connection.send({ type: 'rejected', runId: job.runId, attempt: job.attempt, reason });
      this.#log.info('run.rejected', { run: job.runId, job: job.job, attempt: job.attempt, reason });
      return;
    }
    const run = new Run({
      job,
      executor: this.#executor,
      link: this.#connection,
      console: this.#o.console,
      artifacts: this.#o.artifacts,
      sources: this.#sources,
      environment: () => this.#environment.environment(),
      log: this.#log,
      now: this.#now,
      onSettled: () => {
        this.#executing--;
      },
      onDone: (r) => {
        this.#runs.delete(r.key);
        this.#onRunDone?.();
      },
    });
    this.#runs.set(key, run);
    this.#executing++;
    run.start();
  }

  #refused(err: ServerRefusedError | UntrustedServerError): void {
    this.#log.error('worker.refused', {
      code: err.code,
      error: err.message,
      hint:
        err.code === 'CERTIFICATE'
          ? 'trust the CA with --ca FILE or NODE_EXTRA_CA_CERTS; not retrying'
          : 'check --token and the server version; not retrying',
    });
    void this.stop('the server refused this worker', ExitCode.Refused);
  }
}

function within(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}
