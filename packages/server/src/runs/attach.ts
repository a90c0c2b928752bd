import { isTerminal, type HeldRun, type Reattach } from '@builder/protocol';
import type { Clock } from '../clock.ts';
import type { ConnectedWorker, Registry } from '../workers/registry.ts';
import type { Logger } from '../log.ts';
import type { GroupCommit } from '../store/group-commit.ts';
import type { RunStore } from '../store/runs.ts';
import type { WorkerStore } from '../store/workers.ts';
import type { ActiveRuns } from './active.ts';
import type { Lifecycle } from './lifecycle.ts';

export interface AttachDeps {
  commit: GroupCommit;
  runs: Pick<RunStore, 'get'>;
  workers: Pick<WorkerStore, 'connected' | 'disconnected'>;
  registry: Registry;
  active: ActiveRuns;
  clock: Clock;
  logger: Logger;
  leaseMs: number;
}

/**
 * A worker said hello. Match the runs it still holds against what the server has for it:
 * continue what is current, kill what is stale, forget what is already recorded; runs the server
 * had on this worker that it no longer holds are lost (it restarted).
 */
export function attachWorker(
  ctx: AttachDeps,
  lifecycle: Pick<Lifecycle, 'systemLine' | 'lose'>,
  worker: ConnectedWorker,
  held: HeldRun[],
): Reattach[] {
  const now = ctx.clock.now();
  const previous = ctx.registry.add(worker);
  if (previous && previous !== worker) previous.close(4000, 'replaced by a new connection of the same worker');

  const decisions: Reattach[] = [];
  const heldIds = new Set<string>();
  for (const h of held) {
    heldIds.add(h.runId);
    const a = ctx.active.get(h.runId);
    if (a && a.attempt === h.attempt && a.worker === worker.name) {
      a.leaseUntil = now + ctx.leaseMs;
      worker.runs.add(h.runId);
      decisions.push({ runId: h.runId, attempt: h.attempt, action: 'continue', ackedSeq: a.nextSeq - 1 });
      continue;
    }
    const run = ctx.runs.get(h.runId);
    const recorded = run && run.attempt === h.attempt && isTerminal(run.state);
    if (a && a.worker !== worker.name) {
      // names are public: a worker claiming another's attempt is told to kill its own copy, nothing more
      ctx.logger.warn('run.write_refused', {
        run: h.runId,
        attempt: h.attempt,
        worker: worker.name,
        kind: 'reattach',
        holder: a.worker,
      });
    }
    decisions.push({ runId: h.runId, attempt: h.attempt, action: recorded ? 'forget' : 'kill', ackedSeq: 0 });
  }

  for (const a of ctx.active.ofWorker(worker.name)) {
    if (heldIds.has(a.id)) continue;
    ctx.logger.warn('run.vanished', { run: a.id, worker: worker.name, attempt: a.attempt });
    lifecycle.systemLine(a.id, `worker ${worker.name} reconnected without this run (it restarted?)`);
    lifecycle.lose(a.id, true);
  }

  ctx.commit.write(() => ctx.workers.connected(worker, now));
  ctx.logger.info('worker.connected', {
    worker: worker.name,
    platform: worker.platform,
    capacity: worker.capacity,
    continued: decisions.filter((d) => d.action === 'continue').length,
  });
  return decisions;
}

export function detachWorker(ctx: AttachDeps, worker: ConnectedWorker): void {
  if (!ctx.registry.remove(worker)) return;
  const now = ctx.clock.now();
  ctx.commit.write(() => ctx.workers.disconnected(worker.name, now));
  ctx.logger.info('worker.disconnected', { worker: worker.name, running: worker.runs.size });
}
