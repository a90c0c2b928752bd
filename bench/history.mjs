// A long history: 100,000 finished runs written into a real SQLite file through the server's own
// store (RunStore: insert, assign, start, finish; a few big transactions), then the pages and RPC
// answers that grow with history timed over HTTP and WebSocket against a real server on that file.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobSpecSchema } from '../packages/protocol/dist/index.js';
import { JobStore } from '../packages/server/dist/store/jobs.js';
import { openDb } from '../packages/server/dist/store/db.js';
import { RunStore } from '../packages/server/dist/store/runs.js';
import { createToken, startServerProcess } from '../scripts/local-server.mjs';
import { connect, nodeFlags, percentile, report } from './cluster.mjs';

const JOBS = 10;
const PLATFORMS = ['bench-a', 'bench-b'];

/**
 * The data dir is built once per `bench` invocation and timed in each repetition; with
 * BENCH_HISTORY_DIR it is kept there for the next invocation (when investigating a page).
 */
let prepared;
const keep = process.env.BENCH_HISTORY_DIR;
process.on('exit', () => prepared && !keep && rmSync(prepared.dir, { recursive: true, force: true }));

function dbBytes(data) {
  let n = 0;
  for (const f of ['builder.sqlite', 'builder.sqlite-wal']) {
    try {
      n += statSync(join(data, f)).size;
    } catch {
      // no WAL after a clean close
    }
  }
  return n;
}

function prepare(total) {
  const dir = keep ? join(keep, String(total)) : mkdtempSync(join(tmpdir(), 'builder-bench-history-'));
  const data = join(dir, 'data');
  const saved = join(dir, 'prepared.json');
  if (keep && existsSync(saved)) return JSON.parse(readFileSync(saved, 'utf8'));
  const admin = createToken(data, 'admin'); // also creates the database
  const db = openDb(data);
  const emptyBytes = dbBytes(data);
  const jobs = new JobStore(db);
  const runs = new RunStore(db);
  const t0 = performance.now();
  const ids = [];
  db.transaction(() => {
    for (let j = 0; j < JOBS; j++) {
      const spec = JobSpecSchema.parse({
        name: `job${j}`,
        platforms: PLATFORMS,
        script: `make -C src${j} all check`,
        schedule: null,
      });
      ids.push(jobs.upsert(spec, null, Date.now()).job.id);
    }
  })();
  const start = Date.now() - total * 60_000;
  const perTransaction = 10_000;
  for (let done = 0; done < total; done += perTransaction) {
    db.transaction(() => {
      for (let i = done; i < Math.min(total, done + perTransaction); i++) {
        const jobId = ids[i % JOBS];
        const t = start + i * 60_000;
        const queued = runs.insert({
          jobId,
          number: jobs.allocateNumber(jobId),
          platform: PLATFORMS[Math.floor(i / JOBS) % PLATFORMS.length],
          script: `make -C src${i % JOBS} all check`,
          params: {},
          trigger: 'manual',
          maxAttempts: 1,
          retryBackoffSec: 0,
          timeoutSec: 3600,
          killGraceSec: 10,
          priority: 0,
          queuedAt: t,
        });
        const running = runs.start(runs.assign(queued, `bw${i % 4}`, t + 2), t + 5);
        // one run in seven fails: the failed views have something to find
        const result = i % 7 === 3 ? { kind: 'exited', code: 2 } : { kind: 'exited', code: 0 };
        runs.finish(running, result, t + 30_000, t + 30_000);
      }
    })();
  }
  const insertSeconds = (performance.now() - t0) / 1000;
  db.close();
  const done = { dir, data, admin, total, insertSeconds, bytesPerRun: (dbBytes(data) - emptyBytes) / total };
  if (keep) writeFileSync(saved, JSON.stringify(done));
  return done;
}

async function timed(n, fn) {
  for (let i = 0; i < 5; i++) await fn(); // warm-up
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  return samples.sort((a, b) => a - b);
}

export async function longHistory({ quick }) {
  const total = quick ? 10_000 : 100_000;
  if (!prepared || prepared.total !== total) prepared = prepare(total);
  const { data, admin, insertSeconds, bytesPerRun } = prepared;
  const { server, url } = await startServerProcess(data, nodeFlags);
  const rpc = await connect(url, admin);
  try {
    const job = 'job3';
    const mid = Math.floor(total / JOBS / 2);
    const page = (path) => async () => {
      const res = await fetch(`${url}${path}`);
      if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
      await res.arrayBuffer();
    };
    const probes = {
      site_index: page('/'),
      site_job: page(`/job/${job}`),
      site_run: page(`/job/${job}/run/${mid}`),
      rpc_info: () => rpc.call('info', {}),
      rpc_runs: () => rpc.call('runs', {}),
      rpc_runs_of_job: () => rpc.call('runs', { job }),
    };
    const n = quick ? 20 : 60;
    for (const [name, fn] of Object.entries(probes)) {
      const samples = await timed(n, fn);
      report(`history_${name}_p50`, percentile(samples, 50), 'ms', { runs: total, samples: n });
      report(`history_${name}_p99`, percentile(samples, 99), 'ms', { runs: total, samples: n });
    }
    report('history_db_bytes_per_run', bytesPerRun, 'B', { runs: total });
    report('history_store_insert_rate', total / insertSeconds, 'runs/s', { runs: total });
  } finally {
    rpc.close();
    server.kill(nodeFlags.length ? 'SIGINT' : 'SIGKILL');
    await new Promise((r) => (server.exitCode !== null ? r() : server.on('exit', r)));
  }
}
