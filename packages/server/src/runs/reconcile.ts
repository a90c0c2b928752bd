import type { Heartbeat, ServerToWorker } from '@builder/protocol';
import type { Clock } from '../clock.ts';
import type { ConnectedWorker } from '../workers/registry.ts';
import type { ActiveRuns } from './active.ts';
import type { Lifecycle } from './lifecycle.ts';

/**
 * A heartbeat says what the worker really holds. The server's own view is reconciled with it
 * instead of trusted: an attempt believed assigned to this worker that it does not list, although
 * it has seen that assignment (`assignSeq` ≤ `assignsSeen`; an assignment still in flight is not
 * judged), is reclaimed; an attempt it lists that it should not run is cancelled. Only the listed
 * attempts (and those in flight) have their lease renewed, so heartbeats never keep alive a run
 * the worker does not know it has.
 */
export function reconcile(
  ctx: { active: ActiveRuns; clock: Clock; leaseMs: number },
  lifecycle: Pick<Lifecycle, 'reclaim' | 'stale'>,
  worker: ConnectedWorker,
  hb: Heartbeat,
  assignSeq: Map<string, number>,
): ServerToWorker[] {
  const until = ctx.clock.now() + ctx.leaseMs;
  if (hb.running === undefined) {
    ctx.active.renew(worker.name, until); // a worker from before reconciliation: trust it as before
    return [];
  }
  const listed = new Map(hb.running.map((r) => [r.runId, r.attempt]));
  const seen = hb.assignsSeen ?? 0;
  // assignments the worker has seen and that are no longer this worker's: nothing left to judge
  for (const [id, seq] of assignSeq)
    if (seq <= seen && ctx.active.get(id)?.worker !== worker.name) assignSeq.delete(id);
  for (const a of ctx.active.ofWorker(worker.name)) {
    const seq = assignSeq.get(a.id);
    if (listed.get(a.id) === a.attempt || (seq !== undefined && seq > seen)) {
      a.leaseUntil = until;
      continue;
    }
    lifecycle.reclaim(worker, a.id);
  }
  const replies: ServerToWorker[] = [];
  for (const r of hb.running) {
    const a = ctx.active.get(r.runId);
    if (a && a.attempt === r.attempt && a.worker === worker.name) continue;
    replies.push(lifecycle.stale(worker, r.runId, r.attempt, 'heartbeat'));
  }
  return replies;
}
