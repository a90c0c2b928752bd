/**
 * One seeded schedule: a cluster of 1–3 workers, runs queued now and then, and faults at random
 * for a while (cuts, lagging abandoned connections, black holes, delay spikes, server and worker
 * kill -9); then no more faults, time passes, and the liveness invariants are checked. Everything
 * random comes from the seed, so the same seed replays the same schedule, step for step.
 */
import { rm } from 'node:fs/promises';
import { isTerminal } from '@builder/protocol';
import { Cluster, JOB } from './cluster.ts';
import type { Link } from './network.ts';
import { checkEnd, checkStep, type Committed } from './invariants.ts';
import { SimTime, prng } from './time.ts';
import { START, Trace } from './trace.ts';

export interface Outcome {
  seed: number;
  /** Kept when the seed failed, for a look at the database and the console files. */
  dataDir: string;
  failure: string | undefined;
  /** The last events before the failure (or the end). */
  events: string[];
  faults: string[];
  runs: number;
  lateMessages: number;
  /** Final states of the runs, counted. */
  states: Record<string, number>;
  steps: number;
  simulatedMs: number;
  /** Same seed, same signature: what a replay must reproduce. */
  signature: string;
}

/** Once faults stop, how long a schedule has to settle (plus 2 s per run queued) before it counts as stalled. */
const SETTLE_MS = 60_000;
const D = 'driver';

export async function runSchedule(seed: number, show = 50): Promise<Outcome> {
  const random = prng(seed);
  const pick = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(random() * xs.length)];
  const time = new SimTime(START);
  const trace = new Trace(time);
  const restore = time.install();
  const c = new Cluster(time, random, trace);
  const faults: string[] = [];
  const fault = (what: string) => {
    faults.push(what);
    trace.note(D, `fault: ${what}`);
  };
  try {
    c.startServer();
    const names = ['w1', 'w2', 'w3'].slice(0, 1 + Math.floor(random() * 3));
    c.setup(names.map((name) => ({ name, capacity: 1 + Math.floor(random() * 2) })));
    for (const name of names) time.at(random() * 300, D, () => c.startWorker(name));
    const execute = (n: number) => c.execute(n);
    time.at(random() * 500, D, () => execute(2 + Math.floor(random() * 4)));

    const faultsUntil = 5_000 + random() * 25_000;
    const openLinks = () => c.net.links.filter((l) => !l.blackhole && l.server && l.worker.readyState === 1);
    /** Faults on one open connection, by weight. */
    const onLink: [number, (l: Link) => string][] = [
      [15, (l) => (l.cut(), 'cut')],
      [
        10,
        (l) => {
          // the path slows down and the worker gives up on it before the server notices
          const slow = 100 + random() * 1900;
          l.slowMs = slow;
          l.spikeUntil = time.now + 5000;
          time.at(300 + random() * 1200, D, () => l.abandonByWorker(random() * slow));
          return 'slow, then abandoned by its worker (its last messages lag)';
        },
      ],
      [5, (l) => ((l.blackhole = true), 'black hole')],
      [10, (l) => ((l.slowMs = undefined), (l.spikeUntil = time.now + 1000 + random() * 4000), 'delay spike')],
    ];
    const crashServer = () => {
      if (!c.core) return;
      const silent = random() < 0.2;
      fault(`kill -9 server${silent ? ' (silent)' : ''}`);
      c.crashServer(silent);
      time.at(random() * 2000, D, () => c.startServer());
    };
    const crashWorker = () => {
      const w = pick([...c.workers.values()].filter((x) => x.worker));
      if (!w) return;
      const silent = random() < 0.2;
      fault(`kill -9 ${w.owner}${silent ? ' (silent)' : ''}`);
      c.crashWorker(w.name, silent);
      time.at(random() * 3000, D, () => c.startWorker(w.name));
    };
    const act = () => {
      let dice = random() * 100;
      if ((dice -= 30) < 0) return execute(1 + Math.floor(random() * 3));
      if ((dice -= 4) < 0) {
        const id = c.cancel(pick);
        if (id) trace.note(D, `cancel ${trace.label(id)}`);
        return;
      }
      for (const [weight, f] of onLink) {
        if ((dice -= weight) >= 0) continue;
        const l = pick(openLinks());
        if (l) fault(`${f(l)}: ${l.worker.owner} [c${l.id}]`);
        return;
      }
      if ((dice -= 10) < 0) return crashServer();
      if ((dice -= 15) < 0) return crashWorker();
    };
    for (let t = 200 + random() * 3000; t < faultsUntil; t += 200 + random() * 3000) time.at(t, D, act);

    const committed: Committed = { runs: new Map(), core: undefined, commits: -1 };
    const deadline = () => START + faultsUntil + SETTLE_MS + 2000 * c.acknowledged.size;
    let settled = false;
    while (!trace.failure && time.now < deadline() && !settled) {
      if (!(await time.step())) break;
      const broken = checkStep(c, committed);
      if (broken) trace.fail(broken);
      // once faults are over: done as soon as every run ended and every worker let go of it
      if (time.now > START + faultsUntil && time.steps % 50 === 0) settled = quiet(c);
    }
    if (!trace.failure) {
      const broken = checkEnd(c, faults.length);
      if (broken) trace.fail(broken);
    }
    const runs = c.core ? c.core.ctx.runs.list({ job: c.core.ctx.jobs.get(JOB)!.id, limit: 100_000 }) : [];
    return {
      seed,
      dataDir: c.dataDir,
      failure: trace.failure,
      events: trace.last(show),
      faults,
      runs: c.acknowledged.size,
      lateMessages: c.lateMessages,
      states: count(runs.map((r) => r.state)),
      steps: time.steps,
      simulatedMs: time.now - START,
      signature: `${time.steps} ${time.now} ${trace.hash} ${runs.map((r) => `${r.number}:${r.state}:${r.attempt}`).join(',')}`,
    };
  } finally {
    restore();
    c.core?.abandon();
    // an abandoned core's console compressor may still be finishing a temp file (a crashed process
    // would not be): removed asynchronously, retried until it has noticed it is stopped
    if (!trace.failure) await rm(c.dataDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 10 });
  }
}

function quiet(c: Cluster): boolean {
  const core = c.core;
  if (!core || core.ctx.active.all().length > 0) return false;
  const runs = core.ctx.runs.list({ job: core.ctx.jobs.get(JOB)!.id, limit: 100_000 });
  if (!runs.every((r) => isTerminal(r.state))) return false;
  return [...c.workers.values()].every((w) => w.worker && w.worker.snapshot().length === 0);
}

function count(xs: string[]): Record<string, number> {
  const n: Record<string, number> = {};
  for (const x of xs) n[x] = (n[x] ?? 0) + 1;
  return n;
}
