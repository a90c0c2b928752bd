/**
 * The job processes of the simulation: each attempt prints numbered lines on (simulated) timers
 * and exits 0, or stops when its signal aborts. Every start is recorded, so an attempt executed
 * twice, on one worker or two, is caught the moment it happens.
 */
import type { Assignment, RunResult } from '@builder/protocol';
import type { Executor, RunIO } from '../../packages/worker/src/executors/types.ts';

export const LINES = 5;

export class Executions {
  /** runId/attempt → the worker incarnations that started it. */
  readonly started = new Map<string, string[]>();
  /** Set when an attempt starts a second time. */
  twice: string | undefined;

  record(job: Assignment, worker: string): void {
    const key = `${job.runId}/${job.attempt}`;
    const by = this.started.get(key) ?? [];
    by.push(worker);
    this.started.set(key, by);
    if (by.length > 1) this.twice ??= `attempt ${job.attempt} of run #${job.number} executed twice (${by.join(', ')})`;
  }
}

export class SimExecutor implements Executor {
  readonly name = 'sim';

  constructor(
    private readonly executions: Executions,
    private readonly worker: string,
    /** ms between two lines of a job */
    private readonly pace: () => number,
  ) {}

  async cleanup(): Promise<void> {}

  run(job: Assignment, io: RunIO): Promise<RunResult> {
    this.executions.record(job, this.worker);
    return new Promise((resolve) => {
      io.started();
      let line = 0;
      let timer: NodeJS.Timeout | undefined;
      const next = () => {
        line++;
        io.stdout.write(`line ${line}\n`);
        if (line < LINES) timer = setTimeout(next, this.pace());
        else resolve({ kind: 'exited', code: 0 });
      };
      timer = setTimeout(next, this.pace());
      io.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve({ kind: 'signalled', signal: 'SIGTERM' });
        },
        { once: true },
      );
    });
  }
}
