/**
 * Deterministic simulation of the protocol (the way FoundationDB and TigerBeetle test themselves):
 * the real server core (real SQLite file, real console files) and real workers in this process, on
 * a simulated network and clock, with seeded faults (test/sim/). Each seed is one schedule; the
 * soak test's invariants are checked after every step, liveness at the end of each schedule.
 *
 * BUILDER_SIM_SEEDS=N runs N seeds from BUILDER_SIM_FIRST (default 1); BUILDER_SIM_SEED=S replays
 * seed S alone and prints its trace (BUILDER_SIM_TRACE=N lines); BUILDER_SIM_ALL=1 counts every
 * failing seed instead of stopping at the first. A failing seed prints its last 50 events.
 *
 * What it found (2026-12-07, default 1000 seeds, ~25 s of CPU here):
 * - the race of "The queue never stalls": with worker-session.ts sending at once instead of holding
 *   messages until the welcome, 106 of the first 300 seeds fail, from seed 1, with "message before
 *   welcome; ignored" (an assign); not checking that, 68 of 300 stall (runs assigned forever, or
 *   queued behind them) — reconciliation alone does not save them, as a dropped assignment is
 *   never counted in assignsSeen and so is judged still in flight for ever.
 * - a replaced connection's late heartbeat reclaiming what the new connection had been assigned
 *   (seed 659; fixed in worker-session.ts); and, in a run of it before cancels were simulated, a
 *   worker left "refusing" for good after a stale attempt's finished (fixed in lifecycle.ts; the
 *   default seeds no longer reach it once the first is fixed).
 */
import { describe, expect, it } from 'vitest';
import { runSchedule, type Outcome } from './sim/schedule.ts';

const ONE = process.env.BUILDER_SIM_SEED;
/** ~25 s on this 2-core machine; finds every bug above. */
const SEEDS = Number(process.env.BUILDER_SIM_SEEDS ?? 1000);
const FIRST = Number(process.env.BUILDER_SIM_FIRST ?? 1);
/** Keep going after a failing seed and count them all (to measure how often a bug shows). */
const ALL = process.env.BUILDER_SIM_ALL === '1';

function report(o: Outcome): string {
  return [
    `seed ${o.seed} failed: ${o.failure}`,
    `replay: BUILDER_SIM_SEED=${o.seed} npx vitest run test/simulation.test.ts`,
    `faults: ${o.faults.join('; ') || 'none'}`,
    `data dir: ${o.dataDir}`,
    'last events:',
    ...o.events,
  ].join('\n');
}

describe('simulation: server and workers under seeded faults', () => {
  if (ONE !== undefined) {
    it(`seed ${ONE}`, async () => {
      const o = await runSchedule(Number(ONE), Number(process.env.BUILDER_SIM_TRACE ?? 50));
      console.log(
        [
          `seed ${o.seed}: ${o.runs} runs, ${o.steps} steps, ${(o.simulatedMs / 1000).toFixed(1)}s simulated (signature ${o.signature})`,
          `faults: ${o.faults.join('; ')}`,
          ...o.events,
        ].join('\n'),
      );
      expect(o.failure, report(o)).toBeUndefined();
    });
    return;
  }

  it(
    `${SEEDS} seeded schedules keep every invariant`,
    async () => {
      const started = Date.now();
      const cpu = process.cpuUsage();
      let steps = 0;
      let simulated = 0;
      let late = 0;
      const states: Record<string, number> = {};
      const failed: Outcome[] = [];
      for (let seed = FIRST; seed < FIRST + SEEDS; seed++) {
        const o = await runSchedule(seed);
        steps += o.steps;
        simulated += o.simulatedMs;
        late += o.lateMessages;
        for (const [state, n] of Object.entries(o.states)) states[state] = (states[state] ?? 0) + n;
        if (!ALL) expect(o.failure, report(o)).toBeUndefined();
        else if (o.failure) failed.push(o);
      }
      if (failed.length > 0) {
        const kinds = new Map<string, number[]>();
        for (const o of failed) {
          // the failure without its time, names and numbers: failures of one kind group together
          const kind = o
            .failure!.replace(/^t=\S+ /, '')
            .replace(/\w*#\d+|\d+/g, 'N')
            .slice(0, 70);
          kinds.set(kind, [...(kinds.get(kind) ?? []), o.seed]);
        }
        for (const [kind, seeds] of kinds)
          console.log(`${seeds.length} × ${kind}: seeds ${seeds.slice(0, 10).join(', ')}`);
        expect.fail(`${failed.length} of ${SEEDS} seeds failed\n${report(failed[0]!)}`);
      }
      const secs = (Date.now() - started) / 1000;
      const { user, system } = process.cpuUsage(cpu);
      console.log(
        `simulation: ${SEEDS} seeds in ${secs.toFixed(1)}s (${((user + system) / 1e6).toFixed(1)}s CPU), ${steps} steps, ${(simulated / 3_600_000).toFixed(1)}h simulated, ${late} messages from abandoned connections; runs ended ${JSON.stringify(states)}`,
      );
    },
    60_000 + SEEDS * 500,
  );

  it('replays a seed exactly', async () => {
    const a = await runSchedule(FIRST + 7);
    const b = await runSchedule(FIRST + 7);
    expect(b.signature).toBe(a.signature);
  });
});
