import type { ObserveEvent, RunView } from '@builder/protocol';
import type { Context } from '../cli/context.ts';
import type { Connection } from '../connection.ts';
import { ExitCode } from '../exit.ts';
import { formatRunSummary } from '../format.ts';

export interface FollowTarget {
  /** UUID, JOB/N or JOB#N. */
  ref: string;
  /** Put before every console line, e.g. `[freebsd-14] `; empty: console passes through untouched. */
  prefix: string;
}

/** Splits console data into lines so each can carry a prefix; keeps the unfinished line. */
export class PrefixedLines {
  readonly #write: (text: string) => void;
  readonly #prefix: string;
  #partial = '';

  constructor(write: (text: string) => void, prefix: string) {
    this.#write = write;
    this.#prefix = prefix;
  }

  push(data: string): void {
    if (this.#prefix === '') {
      this.#write(data);
      return;
    }
    const lines = (this.#partial + data).split('\n');
    this.#partial = lines.pop() ?? '';
    if (lines.length > 0) this.#write(lines.map((line) => `${this.#prefix}${line}\n`).join(''));
  }

  flush(): void {
    if (this.#partial !== '') this.#write(`${this.#prefix}${this.#partial}\n`);
    this.#partial = '';
  }
}

/** A JSON line for one observe event; `runId` says which run when several are followed. */
export function eventLine(runId: string, event: ObserveEvent): Record<string, unknown> {
  return { runId, ...event };
}

/**
 * Observe a run with its console until `end`: console to stdout as it arrives, a one-line
 * summary to stderr at the end (or JSON lines with --json). Rejects if the connection drops.
 */
export function followRun(ctx: Context, conn: Connection, target: FollowTarget): Promise<RunView> {
  return new Promise<RunView>((resolve, reject) => {
    const lines = new PrefixedLines((text) => ctx.write(text), target.prefix);
    const stopListening = conn.onClose(reject);
    conn
      .observe({ run: target.ref, console: true }, (event, sub) => {
        if (ctx.json) ctx.printJson(eventLine(sub.run.id, event));
        if (event.kind === 'console' && !ctx.json) lines.push(event.data);
        if (event.kind !== 'end') return;
        lines.flush();
        if (!ctx.json) ctx.note(formatRunSummary(event.run));
        stopListening();
        resolve(event.run);
      })
      .catch((error: unknown) => {
        stopListening();
        reject(error as Error);
      });
  });
}

export function followRuns(ctx: Context, conn: Connection, targets: readonly FollowTarget[]): Promise<RunView[]> {
  return Promise.all(targets.map((target) => followRun(ctx, conn, target)));
}

/** 0 only when every run succeeded. */
export function exitCodeForRuns(runs: readonly RunView[]): number {
  return runs.every((run) => run.state === 'succeeded') ? ExitCode.Ok : ExitCode.RunFailed;
}
