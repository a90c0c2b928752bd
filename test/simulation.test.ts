/**
 * Deterministic simulation of the protocol (the way FoundationDB and TigerBeetle test themselves):
 * the real server core and real workers in this process, on a simulated network and clock, with
 * faults at random (test/sim/). Every seed is a different schedule; the invariants of the soak test
 * are checked after every step, liveness at the end of each schedule.
 *
 * BUILDER_SIM_SEEDS=N runs N seeds (default below), BUILDER_SIM_SEED=S replays seed S alone and
 * prints its trace; a failing seed is printed with the last 50 events before the failure.
 *
 * It finds the race of "The queue never stalls": with worker-session.ts sending at once instead of
 * holding messages until the welcome, seed NNN fails with "message before welcome" (see the commit
 * that added this file for figures).
 */
import { describe, expect, it } from 'vitest';
import { runSchedule, type Outcome } from './sim/schedule.ts';

const ONE = process.env.BUILDER_SIM_SEED;
const SEEDS = Number(process.env.BUILDER_SIM_SEEDS ?? 300);
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
          `seed ${o.seed}: ${o.runs} runs, ${o.steps} steps, ${(o.simulatedMs / 1000).toFixed(1)}s simulated`,
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
