import type { RunResult, ServerToWorker } from '@builder/protocol';
import type { Context } from '../context.ts';
import type { ConnectedWorker } from '../dispatch/registry.ts';
import { Lifecycle } from '../runs/lifecycle.ts';
import type { RunRow } from '../store/rows.ts';
import type { Metrics } from './metrics.ts';

/**
 * The run lifecycle with metrics: observes each transition from outside, so lifecycle.ts stays
 * free of instrumentation. Counts are taken once the change is durable.
 */
export class MeteredLifecycle extends Lifecycle {
  constructor(
    private readonly c: Context,
    private readonly metrics: Metrics,
  ) {
    super(c);
  }

  override started(
    worker: ConnectedWorker,
    runId: string,
    attempt: number,
    startedAt: number,
  ): ServerToWorker | undefined {
    const before = this.c.runs.get(runId);
    const reply = super.started(worker, runId, attempt, startedAt);
    if (before?.state === 'assigned' && before.attempt === attempt && this.c.runs.get(runId)?.state === 'running') {
      this.c.commit.thenLazily(() => this.metrics.started(before, startedAt));
    }
    return reply;
  }

  override endAttempt(run: RunRow, result: RunResult, finishedAt: number): void {
    super.endAttempt(run, result, finishedAt);
    const after = this.c.runs.get(run.id);
    if (!after) return;
    // a retry may already be assigned again by the dispatch inside endAttempt
    const state = after.attempt > run.attempt ? 'queued' : after.state;
    const now = this.c.clock.now();
    this.c.commit.thenLazily(() => this.metrics.attemptEnded(run, state, result, finishedAt, now));
  }

  override reclaim(worker: ConnectedWorker, runId: string): void {
    const before = this.c.runs.get(runId);
    super.reclaim(worker, runId);
    if (before && (before.state === 'assigned' || before.state === 'running')) {
      this.c.commit.thenLazily(() => this.metrics.reclaimed(before, before.state as 'assigned' | 'running'));
    }
  }

  override cancel(run: RunRow, reason: string): void {
    super.cancel(run, reason);
    if (run.state === 'queued') this.c.commit.thenLazily(() => this.metrics.cancelledQueued(run));
  }
}
