#!/usr/bin/env node
// `pnpm bench`: one JSON object per line, {"name", "value", "unit"}. Targets are in ../shared/SPEC.md.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile, report, startCluster, waitForEnd } from './cluster.mjs';

const only = process.argv[2];

async function dispatchLatency() {
  const c = await startCluster({ workers: 1, capacity: 1 });
  try {
    await c.rpc.call('schedule', { name: 'lat', platforms: ['bench'], script: 'true', schedule: null });
    const samples = [];
    for (let i = 0; i < 220; i++) {
      const { runs } = await c.rpc.call('execute', { name: 'lat' });
      const run = await waitForEnd(c.rpc, runs[0].id);
      if (i >= 20) samples.push(run.startedAt - run.queuedAt); // first 20: warm-up
    }
    samples.sort((a, b) => a - b);
    report('dispatch_latency_p50', percentile(samples, 50), 'ms', { samples: samples.length });
    report('dispatch_latency_p99', percentile(samples, 99), 'ms', { samples: samples.length });
  } finally {
    await c.stop();
  }
}

async function throughput() {
  const total = 2000;
  const capacity = Number(process.env.BENCH_CAPACITY ?? 1);
  const c = await startCluster({ workers: 4, capacity });
  try {
    await c.rpc.call('schedule', {
      name: 'tp',
      platforms: ['bench'],
      script: 'true',
      schedule: null,
      concurrency: 1000,
    });
    const t0 = performance.now();
    const created = await Promise.all(Array.from({ length: total }, () => c.rpc.call('execute', { name: 'tp' })));
    const last = created.at(-1).runs[0].id;
    for (;;) {
      const info = await c.rpc.call('info', {});
      const busy = info.platforms.reduce((n, p) => n + p.queued + p.running, 0);
      if (busy === 0) break;
      await new Promise((r) => setTimeout(r, 100)); // polling is not free for the server: keep it rare
    }
    const seconds = (performance.now() - t0) / 1000;
    const lastRun = await c.rpc.call('run', { run: last });
    const failed = (await c.rpc.call('runs', { job: 'tp', state: 'failed', limit: 1000 })).length;
    report('throughput_trivial_jobs', total / seconds, 'jobs/s', {
      jobs: total,
      workers: 4,
      capacity,
      seconds: Math.round(seconds * 100) / 100,
      failed,
      last: lastRun.state,
    });
    report('throughput_server_peak_rss', c.serverPeakRssMiB(), 'MiB');
  } finally {
    await c.stop();
  }
}

async function bigConsole() {
  const bytes = 200 * 1024 * 1024;
  const gen = `yes 'builder console line: the quick brown fox jumps over the lazy dog 0123456789' | head -c ${bytes}`;
  const dir = mkdtempSync(join(tmpdir(), 'builder-bench-file-'));
  const t0 = performance.now();
  execFileSync('/bin/sh', ['-c', `${gen} > ${dir}/out.txt`]);
  const fileSeconds = (performance.now() - t0) / 1000;
  rmSync(dir, { recursive: true, force: true });
  const c = await startCluster({ workers: 1, capacity: 1 });
  try {
    await c.rpc.call('schedule', { name: 'big', platforms: ['bench'], script: gen, schedule: null });
    const t1 = performance.now();
    const { runs } = await c.rpc.call('execute', { name: 'big' });
    const run = await waitForEnd(c.rpc, runs[0].id);
    const seconds = (performance.now() - t1) / 1000;
    report('console_200mb_to_file', fileSeconds, 's');
    report('console_200mb_through_builder', seconds, 's', {
      state: run.state,
      ratio: Math.round((seconds / fileSeconds) * 100) / 100,
    });
    report('console_200mb_server_peak_rss', c.serverPeakRssMiB(), 'MiB');
  } finally {
    await c.stop();
  }
}

const benches = { dispatchLatency, throughput, bigConsole };
for (const [name, fn] of Object.entries(benches)) {
  if (only && only !== name) continue;
  await fn();
}
