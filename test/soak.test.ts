/**
 * Faults at random, Jepsen-style: real server and worker processes, `kill -9` of either at random
 * moments, and connections cut by a TCP proxy in front of each worker, while runs of a job that
 * prints 30 numbered lines keep coming. Afterwards every run must be terminal, none lost unless
 * all its attempts died with a worker, no attempt executed twice, every successful console exact,
 * the database and the CLI agreeing, and no job process left behind.
 *
 * Seeded: the seed is printed, and BUILDER_SOAK_SEED=N reruns the same schedule of faults
 * (process timing still varies). BUILDER_SOAK_SECONDS sets how long faults go on (default 40);
 * BUILDER_SOAK_DEBUG=1 prints what the server and workers logged.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb } from '../packages/server/src/store/db.ts';
import { Api } from './wire.ts';
import { Cluster, killLeftovers, procAlive, readPids, sleep, tcpProxy, waitFor, type TcpProxy } from './harness.ts';

const SEED = Number(process.env.BUILDER_SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
const SECONDS = Number(process.env.BUILDER_SOAK_SECONDS ?? 40);
const WORKERS = ['s1', 's2', 's3'];
const LINES = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);

/** mulberry32: a small seeded PRNG, so a failing schedule of faults can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe(`soak: random kill -9 and cut connections (seed ${SEED}, ${SECONDS}s)`, () => {
  let c: Cluster | undefined;
  const proxies: TcpProxy[] = [];
  let pidsFile = '';

  afterAll(async () => {
    killLeftovers(readPids(pidsFile));
    for (const p of proxies) await p.close();
    await c?.stop();
  });

  it(
    'ends with every run terminal, each attempt run once and every console exact',
    async () => {
      console.log(`soak seed ${SEED} (rerun with BUILDER_SOAK_SEED=${SEED})`);
      const random = prng(SEED);
      const between = (lo: number, hi: number) => lo + random() * (hi - lo);
      const cluster = await Cluster.start(['--lease', '3s']);
      c = cluster;
      const marks = join(cluster.dir, 'marks');
      pidsFile = join(cluster.dir, 'pids');
      const faults: string[] = [];
      const note = (what: string) => {
        faults.push(what);
        appendFileSync(join(cluster.dir, 'faults'), `${new Date().toISOString()} ${what}\n`);
      };

      for (const name of WORKERS) {
        const proxy = await tcpProxy(cluster.port);
        proxies.push(proxy);
        cluster.startWorker(name, { capacity: 2, remote: `http://127.0.0.1:${proxy.port}` });
      }
      await cluster.waitForWorkers(...WORKERS);
      await cluster.schedule(
        'soak',
        `echo "$BUILDER_RUN_ID $BUILDER_ATTEMPT" >> ${marks}
echo $$ >> ${pidsFile}
for i in $(seq 1 30); do echo "line $i"; sleep 0.05; done
`,
        ['--retries', '3', '--retry-backoff', '0', '--concurrency', '6'],
      );

      /** execute N runs (one API connection, not a CLI process each), riding over a server restart */
      let queued = 0;
      const enqueue = async (n: number) => {
        for (let tries = 0; n > 0; tries++) {
          let api: Api | undefined;
          try {
            api = await Api.connect(cluster.url, cluster.tokens.admin);
            for (; n > 0; n--) {
              await api.call('execute', { name: 'soak' });
              queued++;
            }
          } catch (err) {
            if (tries > 50) throw err;
            await sleep(200);
          } finally {
            api?.close();
          }
        }
      };
      await enqueue(20);

      const until = Date.now() + SECONDS * 1000;
      while (Date.now() < until) {
        await sleep(between(1500, 4500));
        const dice = random();
        if (dice < 0.3) {
          note('kill -9 server');
          await cluster.killServer('SIGKILL');
          await sleep(between(0, 1000));
          await cluster.startServer();
        } else if (dice < 0.65) {
          const name = WORKERS[Math.floor(random() * WORKERS.length)]!;
          note(`kill -9 worker ${name}`);
          cluster.workers.get(name)!.child.kill('SIGKILL');
          await cluster.workers.get(name)!.exited;
          await sleep(between(0, 1500));
          const proxy = proxies[WORKERS.indexOf(name)]!;
          cluster.startWorker(name, { capacity: 2, remote: `http://127.0.0.1:${proxy.port}` });
        } else {
          const i = Math.floor(random() * WORKERS.length);
          note(`cut connections of worker ${WORKERS[i]}`);
          proxies[i]!.drop();
        }
        await enqueue(Math.floor(between(2, 8)));
      }
      console.log(`soak: ${queued} runs, faults: ${faults.length} (${faults.join(', ')})`);
      const drainStart = Date.now();

      // no more faults: the queue must drain by itself
      type RunJson = { id: string; number: number; state: string; attempt: number; maxAttempts: number };
      let runs: RunJson[] = [];
      await waitFor(
        async () => {
          const r = await cluster.client(['runs', 'soak', '--limit', '1000', '--json']);
          if (r.code !== 0) return false;
          runs = JSON.parse(r.stdout) as RunJson[];
          return runs.length === queued && runs.every((x) => !['queued', 'assigned', 'running'].includes(x.state));
        },
        'every run to end after the faults',
        120_000,
      ).catch((err: Error) => {
        const stuck = runs.filter((x) => ['queued', 'assigned', 'running'].includes(x.state));
        throw new Error(
          `${err.message} (seed ${SEED}): ${stuck.length} not terminal: ${JSON.stringify(stuck.slice(0, 5))}`,
        );
      });

      console.log(`soak: drained in ${((Date.now() - drainStart) / 1000).toFixed(1)}s`);
      if (process.env.BUILDER_SOAK_DEBUG) {
        const events = new Map<string, number>();
        for (const m of cluster.server!.output().matchAll(/"event":"([^"]+)"/g))
          events.set(m[1]!, (events.get(m[1]!) ?? 0) + 1);
        console.log(JSON.stringify([...events]));
        console.log(
          cluster
            .server!.output()
            .split('\n')
            .filter((l) => /lost|reclaim|vanished|refused|stale/.test(l))
            .slice(-40)
            .join('\n'),
        );
        for (const n of WORKERS) console.log(n, cluster.workers.get(n)!.output().split('\n').slice(-15).join('\n'));
      }
      // lost only when every attempt died with a fault; nothing else goes wrong with this job
      for (const r of runs) {
        if (r.state === 'lost') expect(r.attempt, `soak/${r.number} lost before its last attempt`).toBe(r.maxAttempts);
        else expect(r.state, `soak/${r.number}`).toBe('succeeded');
      }

      // no attempt executed twice
      const executed = readFileSync(marks, 'utf8').trim().split('\n');
      expect(executed.length, 'an attempt executed twice').toBe(new Set(executed).size);

      // every successful console: the last attempt's 30 lines, once and in order
      for (const r of runs.filter((x) => x.state === 'succeeded')) {
        const log = await (await fetch(`${cluster.url}/job/soak/run/${r.number}/console.txt`)).text();
        const from = r.attempt === 1 ? 0 : log.lastIndexOf(`[builder] attempt ${r.attempt} of`);
        expect(from, `soak/${r.number}: where attempt ${r.attempt} starts`).toBeGreaterThanOrEqual(0);
        const own = log
          .slice(from)
          .split('\n')
          .filter((l) => l !== '' && !l.startsWith('[builder]'));
        expect(own, `console of soak/${r.number} (seed ${SEED})`).toEqual(LINES);
        expect(executed.filter((m) => m === `${r.id} ${r.attempt}`)).toHaveLength(1);
      }

      // the database and the CLI agree
      const db = openDb(cluster.dataDir);
      const rows = db
        .prepare("SELECT number, state, attempt FROM runs WHERE job_id = (SELECT id FROM jobs WHERE name = 'soak')")
        .all() as {
        number: number;
        state: string;
        attempt: number;
      }[];
      db.close();
      const byNumber = new Map(runs.map((r) => [r.number, r]));
      expect(rows).toHaveLength(runs.length);
      for (const row of rows)
        expect(byNumber.get(row.number)).toMatchObject({ state: row.state, attempt: row.attempt });

      // no job process left on the host (orphans of killed workers end on their broken pipe)
      await waitFor(() => readPids(pidsFile).every((pid) => !procAlive(pid)), 'every job process to be gone', 10_000);
    },
    (SECONDS + 200) * 1000,
  );
});
