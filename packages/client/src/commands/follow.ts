import type { ObserveEvent, RunView } from '@builder/protocol';
import { Outage } from '../outage.ts';
import type { Context } from '../cli/context.ts';
import type { Connection } from '../connection.ts';
import { isRetryable } from '../errors.ts';
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

/** One followed run: how much of its console was printed, where its lines go, how it ended. */
interface Followed {
  readonly target: FollowTarget;
  readonly lines: PrefixedLines;
  /** Console characters printed so far: a replay after a reconnect skips them. */
  printed: number;
  final?: RunView;
}

/**
 * Follow runs until each ends, over `first` and, when a connection drops, over new ones: like
 * `watch`, a lost connection is retried with backoff and every unfinished run observed again, its
 * console replay skipped up to what was already printed (no line lost or doubled). After `giveUpMs`
 * without a connection, the last ConnectionError is thrown (exit 4). A refused certificate or a
 * proxy's refusal is thrown at once.
 */
export async function followRunsResuming(
  ctx: Context,
  first: Connection,
  targets: readonly FollowTarget[],
  giveUpMs: number,
): Promise<RunView[]> {
  const followed: Followed[] = targets.map((target) => ({
    target,
    lines: new PrefixedLines((text) => ctx.write(text), target.prefix),
    printed: 0,
  }));
  const outage = new Outage(ctx, giveUpMs);
  let conn: Connection | undefined = first;
  for (;;) {
    if (conn === undefined) {
      try {
        conn = await ctx.connect();
      } catch (error) {
        if (!isRetryable(error)) throw error;
        await outage.pause(error);
        continue;
      }
    }
    try {
      const open = followed.filter((f) => f.final === undefined);
      await Promise.all(open.map((f) => followOnce(ctx, conn!, f, () => outage.over())));
      return followed.map((f) => f.final!);
    } catch (error) {
      if (!isRetryable(error)) throw error;
      await outage.pause(error);
    } finally {
      if (conn !== first) await conn.close();
      conn = undefined;
    }
  }
}

/** Observe one run on `conn` until its end; console already printed (a replay) is skipped. */
function followOnce(ctx: Context, conn: Connection, f: Followed, onObserving: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let seen = 0;
    const stopListening = conn.onClose(reject);
    conn
      .observe({ run: f.target.ref, console: true }, (event, sub) => {
        if (event.kind === 'console') {
          const skip = Math.max(0, f.printed - seen);
          seen += event.data.length;
          if (skip >= event.data.length) return;
          const data = event.data.slice(skip);
          f.printed += data.length;
          if (ctx.json) ctx.printJson(eventLine(sub.run.id, { kind: 'console', data }));
          else f.lines.push(data);
          return;
        }
        if (ctx.json) ctx.printJson(eventLine(sub.run.id, event));
        if (event.kind !== 'end') return;
        f.lines.flush();
        if (!ctx.json) ctx.note(formatRunSummary(event.run));
        f.final = event.run;
        stopListening();
        resolve();
      })
      .then(onObserving, (error: unknown) => {
        stopListening();
        reject(error as Error);
      });
  });
}

/** 0 only when every run succeeded. */
export function exitCodeForRuns(runs: readonly RunView[]): number {
  return runs.every((run) => run.state === 'succeeded') ? ExitCode.Ok : ExitCode.RunFailed;
}
