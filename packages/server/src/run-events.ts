import type { RunResult } from '@builder/protocol';
import type { Logger } from './log.ts';
import type { GroupCommit } from './store/group-commit.ts';
import type { RunRow } from './store/rows.ts';

/**
 * What happened to a run (or to what runs wait for), told once the batch that made it is durable.
 * `run` is the row as it is after the change.
 */
export type RunEvent =
  /** A new run is waiting in the queue. */
  | { type: 'queued'; run: RunRow }
  /** Handed to `run.worker`. */
  | { type: 'assigned'; run: RunRow }
  | { type: 'started'; run: RunRow }
  /** Back in the queue with the same attempt: its worker never started it (it rejected or lost it). */
  | { type: 'requeued'; run: RunRow }
  /** A worker's heartbeat did not list an attempt it held in `state` (`run` as it was; requeued or ended came first). */
  | { type: 'reclaimed'; run: RunRow; state: 'assigned' | 'running' }
  /**
   * An attempt ended (a queued run cancelled too): `attempt` is the row as it was, `run` as it is
   * now, `queued` again when the retry policy gave it another attempt, terminal otherwise.
   */
  | { type: 'ended'; run: RunRow; attempt: RunRow; result: RunResult; finishedAt: number; at: number }
  /** Console bytes up to file offset `end` are durable; `bytes` only when someone watched as they came. */
  | { type: 'output'; runId: string; bytes: Buffer | undefined; end: number }
  /** A worker may take work: it connected, or a refusing one reported an attempt over. */
  | { type: 'worker-ready'; worker: string }
  /** Runs of this platform may be dispatched again. */
  | { type: 'platform-undropped'; platform: string };

export type RunEventListener = (event: RunEvent) => void;

/** What the events need: when the batch that made them commits (or is rolled back). */
export interface RunEventsDeps {
  commit: Pick<GroupCommit, 'thenLazily' | 'hurry'>;
  logger: Logger;
}

/**
 * The one route by which a change reaches whoever reacts to it (observers, the dispatcher, alerts,
 * metrics, the website's live console). An event is delivered after its batch commits, never for a
 * batch rolled back or a write whose savepoint failed (GroupCommit drops what such a write queued).
 * A listener that throws is logged and does not keep the event from the others.
 */
export class RunEvents {
  private readonly listeners: RunEventListener[] = [];

  constructor(private readonly deps: RunEventsDeps) {}

  subscribe(listener: RunEventListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /**
   * Told once the current batch is durable (at once if none is open). Call it after the write that
   * made the change returned, not inside it. State changes hurry the commit, as someone may wait on
   * them; output rides along with the batch's acks.
   */
  emit(event: RunEvent): void {
    const { commit } = this.deps;
    commit.thenLazily(() => this.deliver(event));
    if (event.type !== 'output') commit.hurry();
  }

  private deliver(event: RunEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.deps.logger.error('run.event_listener_failed', {
          event: event.type,
          ...('run' in event ? { run: event.run.id } : 'runId' in event ? { run: event.runId } : {}),
          error: String((err as Error).stack ?? err),
        });
      }
    }
  }
}

/** The run's console will not grow: it ended for good. */
export function isFinalEnd(event: RunEvent): boolean {
  return event.type === 'ended' && event.run.state !== 'queued';
}
