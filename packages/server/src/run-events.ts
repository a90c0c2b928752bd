import type { RunResult } from '@builder/protocol';
import type { Logger } from './log.ts';
import { isStorageFull } from './storage/full.ts';
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
/** Told the events of a batch at once, just before it commits. */
export type BatchListener = (events: readonly RunEvent[]) => void;

/** What the events need: when the batch that made them commits (or is rolled back). */
export interface RunEventsDeps {
  commit: Pick<GroupCommit, 'thenLazily' | 'hurry' | 'beforeFlush' | 'batchesEnded'>;
  logger: Logger;
}

/**
 * The one route by which a change reaches whoever reacts to it (observers, the dispatcher, alerts,
 * metrics, the website's live console). An event is delivered after its batch commits, never for a
 * batch rolled back or a write whose savepoint failed (GroupCommit drops what such a write queued).
 * A listener that throws is logged and does not keep the event from the others.
 *
 * One kind of listener may act before the commit: one whose only effect is more writes to the same
 * batch (`beforeCommit`: the dispatcher), which then commit or roll back with the change that caused
 * them. That keeps an assignment in the batch of the enqueue or the finish that freed its slot (one
 * fsync, not two, on the path of every run); what it tells the outside world still waits for the commit.
 */
export class RunEvents {
  private readonly listeners: RunEventListener[] = [];
  private readonly writers: BatchListener[] = [];
  /** Events of the open batch for the `beforeCommit` listeners, told once just before it commits. */
  private staged: RunEvent[] = [];
  /** Which batch `staged` belongs to (GroupCommit.batchesEnded when it was open). */
  private stagedIn = -1;

  constructor(private readonly deps: RunEventsDeps) {}

  /** Told after the batch that made the event committed; never for one rolled back. */
  subscribe(listener: RunEventListener): () => void {
    return add(this.listeners, listener);
  }

  /**
   * Told a batch's events (output aside) just before it commits (at once when none is open), inside
   * it: for a listener whose only effect is more writes to that batch. Events its writes emit come
   * in a second call, still before the commit.
   */
  beforeCommit(listener: BatchListener): () => void {
    return add(this.writers, listener);
  }

  /**
   * Told once the current batch is durable (at once if none is open). Call it after the write that
   * made the change returned, not inside it. State changes hurry the commit, as someone may wait on
   * them; output rides along with the batch's acks, and so does a start: nothing waits on it (the
   * dispatcher does not, a watcher sees it at most GroupCommit's lazy delay later), and a trivial
   * job's end usually arrives within that delay, so start and end share one fsync, not two.
   */
  emit(event: RunEvent): void {
    const { commit } = this.deps;
    if (this.writers.length > 0 && event.type !== 'output') {
      // a batch rolled back before its commit took its staged events with it
      if (this.stagedIn !== commit.batchesEnded) ((this.staged = []), (this.stagedIn = commit.batchesEnded));
      if (this.staged.push(event) === 1) commit.beforeFlush(() => this.deliverStaged());
    }
    commit.thenLazily(() => this.deliver(event, this.listeners));
    if (event.type !== 'output' && event.type !== 'started') commit.hurry();
  }

  private deliverStaged(): void {
    const staged = this.staged;
    this.staged = [];
    for (const writer of this.writers) {
      try {
        writer(staged);
      } catch (err) {
        if (isStorageFull(err)) throw err; // the batch cannot commit: GroupCommit rolls it back
        this.deps.logger.error('run.event_listener_failed', {
          events: staged.length,
          error: String((err as Error).stack ?? err),
        });
      }
    }
  }

  private deliver(event: RunEvent, listeners: RunEventListener[]): void {
    for (const listener of listeners) {
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

function add<L>(list: L[], listener: L): () => void {
  list.push(listener);
  return () => {
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
  };
}
