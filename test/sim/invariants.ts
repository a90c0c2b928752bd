/**
 * The invariants of the real soak test (test/soak.test.ts), checked on the simulation: the cheap
 * ones after every step, the liveness ones once faults have stopped and time has passed.
 */
import { isTerminal, type RunState } from '@builder/protocol';
import type { ServerCore } from '../../packages/server/src/core.ts';
import { type Cluster, JOB } from './cluster.ts';
import { LINES } from './executor.ts';

type Row = { id: string; number: number; state: RunState; attempt: number; worker: string | null };
interface Queries {
  inFlight(): Row[];
  all(): Row[];
}
const queries = new WeakMap<ServerCore, Queries>();

function query(core: ServerCore): Queries {
  let q = queries.get(core);
  if (!q) {
    const cols = 'SELECT id, number, state, attempt, worker FROM runs';
    const inFlight = core.ctx.db.prepare<[], Row>(`${cols} WHERE state IN ('assigned', 'running')`);
    const all = core.ctx.db.prepare<[], Row>(cols);
    q = { inFlight: () => inFlight.all(), all: () => all.all() };
    queries.set(core, q);
  }
  return q;
}

/** What the last committed state said of each run (committed state only moves forward), as of which commit. */
export interface Committed {
  runs: Map<string, { state: RunState; attempt: number }>;
  core: ServerCore | undefined;
  commits: number;
}

/**
 * After every step: returns what is broken, if anything. The server's state can only have changed
 * in a step the server ran, so only those are checked against the database.
 */
export function checkStep(c: Cluster, committed: Committed): string | undefined {
  if (c.executions.twice) return c.executions.twice;
  const thrown = c.time.errors[0];
  if (thrown) return `${thrown.owner} threw: ${(thrown.error as Error).stack ?? String(thrown.error)}`;
  const core = c.core;
  if (!core || c.time.lastOwner !== c.serverOwner) return undefined;
  const { ctx } = core;
  // the database (read inside the open batch) and the server's memory tell the same story
  const inFlight = query(core).inFlight();
  for (const r of inFlight) {
    const a = ctx.active.get(r.id);
    if (!a || a.attempt !== r.attempt || a.worker !== r.worker) {
      return `run #${r.number} is ${r.state} (attempt ${r.attempt} on ${r.worker}) in the database but in memory ${a ? `attempt ${a.attempt} on ${a.worker}` : 'not active'}`;
    }
  }
  const active = ctx.active.all();
  if (inFlight.length !== active.length) {
    const extra = active.filter((a) => !inFlight.some((r) => r.id === a.id)).map((a) => a.id);
    return `active in memory but not assigned or running in the database: ${extra.join(', ')}`;
  }
  for (const w of ctx.registry.all()) {
    for (const id of w.runs) {
      if (ctx.active.get(id)?.worker !== w.name) return `worker ${w.name} counts run ${id} it does not hold`;
    }
  }
  if (ctx.commit.pending || (committed.core === core && committed.commits === ctx.commit.commits)) return undefined;
  committed.core = core;
  committed.commits = ctx.commit.commits;
  for (const r of query(core).all()) {
    const before = committed.runs.get(r.id);
    if (before && (r.attempt < before.attempt || (isTerminal(before.state) && r.state !== before.state))) {
      return `run #${r.number} went back from ${before.state} (attempt ${before.attempt}) to ${r.state} (attempt ${r.attempt}) in committed state`;
    }
    committed.runs.set(r.id, { state: r.state, attempt: r.attempt });
  }
  return undefined;
}

/** After the faults stopped and time passed: nothing stalled, nothing lost without a cause, every console exact. */
export function checkEnd(c: Cluster, faults: number): string | undefined {
  const core = c.core;
  if (!core) return 'no server at the end';
  const { ctx } = core;
  const job = ctx.jobs.get(JOB)!;
  const runs = ctx.runs.list({ job: job.id, limit: 100_000 });
  const ids = new Set(runs.map((r) => r.id));
  const missing = [...c.acknowledged].filter((id) => !ids.has(id));
  if (missing.length > 0) return `${missing.length} acknowledged runs not in the database`;
  const stuck = runs.filter((r) => !isTerminal(r.state));
  if (stuck.length > 0) {
    return `stalled: ${stuck.map((r) => `#${r.number} ${r.state} attempt ${r.attempt} on ${r.worker}`).join(', ')}`;
  }
  for (const r of runs) {
    if (r.state === 'lost') {
      // a lost run is explained only by faults that took every one of its attempts
      if (faults === 0) return `run #${r.number} lost without any fault`;
      if (r.attempt !== r.maxAttempts) return `run #${r.number} lost at attempt ${r.attempt} of ${r.maxAttempts}`;
      continue;
    }
    // a run someone cancelled may end cancelled, or however it got to end first
    if (r.state === 'cancelled' && c.cancelled.has(r.id)) continue;
    if (r.state !== 'succeeded') return `run #${r.number} ended ${r.state}: ${JSON.stringify(r.result)}`;
    if (faults === 0 && r.attempt !== 1) return `run #${r.number} needed attempt ${r.attempt} without any fault`;
    const runs = c.executions.started.get(`${r.id}/${r.attempt}`)?.length ?? 0;
    if (runs !== 1) return `run #${r.number} succeeded with attempt ${r.attempt}, which was executed ${runs} times`;
    const log = ctx.logs.read(r.id, 0, r.logBytes).toString();
    const from = r.attempt === 1 ? 0 : log.lastIndexOf(`[builder] attempt ${r.attempt} of`);
    if (from < 0) return `run #${r.number}: the console does not say where attempt ${r.attempt} starts`;
    const own = log
      .slice(from)
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('[builder]'));
    const want = Array.from({ length: LINES }, (_, i) => `line ${i + 1}`);
    if (own.join('|') !== want.join('|')) return `run #${r.number}: console ${JSON.stringify(own)}`;
  }
  if (ctx.active.all().length > 0) return `${ctx.active.all().length} runs still active in memory`;
  for (const w of c.workers.values()) {
    const held = w.worker?.snapshot() ?? [];
    if (held.length > 0) {
      return `worker ${w.owner} still holds ${held.map((h) => `${c.trace.numbers.get(h.runId)}/${h.attempt} ${h.phase}`).join(', ')}`;
    }
  }
  return undefined;
}
