// A thousand workers: lightweight protocol-level workers (bench/fleet.mjs, in a few processes)
// connect to one server holding 10,000 queued runs and finish whatever they are given at once.
// Figures: the run rate, the server's RSS, dispatch latency with all of them connected, and a check
// in the database that every run was done exactly once.
import { fork } from 'node:child_process';
import { join } from 'node:path';
import Database from '../packages/server/node_modules/better-sqlite3/lib/index.js';
import { percentile, report, startCluster, waitForEnd, waitForIdle } from './cluster.mjs';

export async function thousandWorkers({ quick }) {
  const workers = quick ? 100 : 1000;
  const total = quick ? 1000 : 10_000;
  const processes = 4;
  const c = await startCluster({ workers: 0 });
  const fleets = [];
  try {
    await c.rpc.call('schedule', {
      name: 'many',
      platforms: ['fleet'],
      script: 'true',
      schedule: null,
      concurrency: 1000,
    });
    const tq = performance.now();
    let last;
    for (let queued = 0; queued < total; queued += 500) {
      const n = Math.min(500, total - queued);
      const created = await Promise.all(Array.from({ length: n }, () => c.rpc.call('execute', { name: 'many' })));
      last = created.at(-1).runs[0].id;
    }
    const queueSeconds = (performance.now() - tq) / 1000;

    const t0 = performance.now();
    const cpu0 = c.serverCpuSeconds();
    const per = Math.ceil(workers / processes);
    const welcomed = [];
    for (let p = 0; p < processes; p++) {
      const count = Math.min(per, workers - p * per);
      const fleet = fork(
        join(import.meta.dirname, 'fleet.mjs'),
        [c.url, c.workerToken, String(p * per), String(count), 'fleet'],
        { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
      );
      fleets.push(fleet);
      welcomed.push(
        new Promise((ok, fail) => {
          fleet.on('message', (m) => {
            if (m.type === 'welcomed') ok();
            else if (m.type === 'error') process.stderr.write(`fleet: ${m.name}: ${m.error}\n`);
          });
          fleet.once('exit', (code) => fail(new Error(`fleet process exited with ${code}`)));
        }),
      );
    }
    await Promise.all(welcomed);
    const connectSeconds = (performance.now() - t0) / 1000;
    // the last queued run is among the last to end (FIFO); then make sure nothing is left
    await waitForEnd(c.rpc, last);
    await waitForIdle(c.rpc);
    const seconds = (performance.now() - t0) / 1000;
    const rssAfterRuns = c.serverRssMiB();
    const mallocAfterRuns = c.serverMallocHeapMiB();
    const cpuSeconds = c.serverCpuSeconds() - cpu0;

    // dispatch latency with every worker connected and idle
    const samples = [];
    for (let i = 0; i < (quick ? 60 : 220); i++) {
      const { runs } = await c.rpc.call('execute', { name: 'many' });
      const run = await waitForEnd(c.rpc, runs[0].id);
      if (i >= 20) samples.push(run.startedAt - run.queuedAt);
    }
    samples.sort((a, b) => a - b);

    // exactly once: by the workers' own account, and by the database's
    const assigned = (
      await Promise.all(
        fleets.map(
          (f) =>
            new Promise((ok) => {
              f.on('message', (m) => m.type === 'assigned' && ok(m.runIds));
              f.send('assigned');
            }),
        ),
      )
    ).flat();
    const db = new Database(join(c.dir, 'data', 'builder.sqlite'), { readonly: true });
    let check;
    try {
      check = db
        .prepare(
          `SELECT COUNT(*) AS runs, SUM(runs.state = 'succeeded') AS succeeded, MAX(runs.attempt) AS maxAttempt,
           (SELECT COUNT(*) FROM attempts JOIN runs r ON r.id = attempts.run_id WHERE r.job_id = jobs.id) AS attempts,
           COUNT(DISTINCT runs.worker) AS workersUsed
           FROM runs JOIN jobs ON jobs.id = runs.job_id WHERE jobs.name = 'many'`,
        )
        .get();
    } finally {
      db.close();
    }
    const expected = total + samples.length + 20;
    const distinct = new Set(assigned).size;
    const exactlyOnce =
      check.runs === expected &&
      check.succeeded === expected &&
      check.attempts === expected &&
      check.maxAttempt === 1 &&
      assigned.length === expected &&
      distinct === expected;
    if (!exactlyOnce)
      process.stderr.write(
        `thousand workers: not exactly once: ${JSON.stringify({ ...check, assigned: assigned.length, distinct, expected })}\n`,
      );
    report('thousand_workers_run_rate', total / seconds, 'runs/s', {
      workers,
      runs: total,
      seconds: Math.round(seconds * 100) / 100,
      connectSeconds: Math.round(connectSeconds * 100) / 100,
      queueSeconds: Math.round(queueSeconds * 100) / 100,
      workersUsed: check.workersUsed,
    });
    report('thousand_workers_exactly_once', exactlyOnce ? 1 : 0, 'bool', {
      runs: check.runs,
      succeeded: check.succeeded,
      attempts: check.attempts,
      assigns: assigned.length,
    });
    report('thousand_workers_dispatch_p50', percentile(samples, 50), 'ms', { samples: samples.length });
    report('thousand_workers_dispatch_p99', percentile(samples, 99), 'ms', { samples: samples.length });
    // CPU is what other load on the machine leaves alone, where the run rate is not
    report('thousand_workers_server_cpu', cpuSeconds, 's', { perRunMs: Math.round((cpuSeconds / total) * 1e5) / 100 });
    // VmRSS the moment the last run ended (the heap still at its size under load), and of that the
    // malloc heap; the peak is VmHWM over the whole bench, queueing included
    report('thousand_workers_server_rss', rssAfterRuns, 'MiB', {
      mallocHeapMiB: Math.round(mallocAfterRuns * 10) / 10,
    });
    report('thousand_workers_server_peak_rss', c.serverPeakRssMiB(), 'MiB');
  } finally {
    for (const f of fleets) f.kill('SIGKILL');
    await c.stop();
  }
}
