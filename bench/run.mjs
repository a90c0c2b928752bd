#!/usr/bin/env node
// `pnpm bench [NAME] [--quick]`: one JSON object per figure and line, {"name", "value", "unit", ...}:
// `value` is the median over BENCH_REPEAT repetitions (default 3), with `min`, `max` and every
// repetition's `values`. NAME runs one bench; --quick runs small sizes once, as a smoke test.
// A figure with a target (bench/targets.mjs) also has `target` and `met`, and the run ends with a
// summary of the targets on stderr. The last measured figures: README.md, "Measured here".
import { hashFile, sendArtifacts } from '../packages/protocol/dist/transfer/index.js';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { collectFigures, percentile, report, startCluster, waitForEnd, waitForIdle } from './cluster.mjs';
import { cpuSeconds } from './proc-cpu.mjs';
import { longHistory } from './history.mjs';
import { checkTarget, summarizeTargets } from './targets.mjs';
import { thousandWorkers } from './thousand.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.find((a) => !a.startsWith('--'));
const repeat = Number(process.env.BENCH_REPEAT ?? (quick ? 1 : 3));

async function dispatchLatency() {
  const c = await startCluster({ workers: 1, capacity: 1 });
  const n = quick ? 60 : 220;
  try {
    await c.rpc.call('schedule', { name: 'lat', platforms: ['bench'], script: 'true', schedule: null });
    const samples = [];
    for (let i = 0; i < n; i++) {
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

/**
 * The machine's limit for trivial jobs: `workers` Node processes (bench/spawner.mjs) that do nothing
 * but spawn `sh -c true` with piped output, `capacity` at a time each, `total` in all, twice: fresh
 * (`cold`), then again (`warm`). For each round: jobs/s, and the CPU seconds the spawners and their
 * children used. `how`: Node's child_process (the yardstick), or 'posix' for the worker's
 * own posix_spawn.
 */
async function bareSpawnRate(total, workers, capacity, how = 'node') {
  const procs = Array.from({ length: workers }, (_, i) =>
    spawn(process.execPath, [
      join(import.meta.dirname, 'spawner.mjs'),
      String(Math.floor(total / workers) + (i < total % workers ? 1 : 0)),
      String(capacity),
      how,
    ]),
  );
  // each process's next line (readline keeps those not asked for yet)
  const next = procs.map((p) => {
    const lines = createInterface({ input: p.stdout })[Symbol.asyncIterator]();
    return async () => {
      const { value, done } = await lines.next();
      if (done) throw new Error('a spawner ended before its next line');
      return value;
    };
  });
  await Promise.all(next.map((line) => line()));
  const rounds = {};
  for (const round of ['cold', 'warm']) {
    const t0 = performance.now();
    for (const p of procs) p.stdin.write('go\n');
    const results = await Promise.all(next.map((line) => line()));
    const seconds = (performance.now() - t0) / 1000;
    const cpu = { own: 0, children: 0 };
    for (const r of results) {
      const m = /^\w+ \d+ cpu ([\d.e-]+) ([\d.e-]+)$/.exec(r);
      if (!m) throw new Error(`spawner: unexpected line ${r}`);
      cpu.own += Number(m[1]);
      cpu.children += Number(m[2]);
    }
    rounds[round] = { rate: total / seconds, cpu };
  }
  await Promise.all(procs.map((p) => (p.exitCode !== null ? null : new Promise((ok) => p.once('exit', ok)))));
  return rounds;
}

/** `total` trivial jobs through the cluster, timed from the first execute to the end of the last. */
async function jobsThrough(c, total, cpuOf) {
  const cpu0 = cpuOf();
  const t0 = performance.now();
  const created = await Promise.all(Array.from({ length: total }, () => c.rpc.call('execute', { name: 'tp' })));
  const last = created.at(-1).runs[0].id;
  // FIFO: the last queued run is among the last to end; watching it costs the server nothing
  // per run, where polling `info` meanwhile would (100 queued runs described per call)
  await waitForEnd(c.rpc, last);
  await waitForIdle(c.rpc);
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = cpuOf();
  return {
    rate: total / seconds,
    seconds,
    cpu: { server: cpu1.server - cpu0.server, workers: cpu1.workers - cpu0.workers, jobs: cpu1.jobs - cpu0.jobs },
    last: (await c.rpc.call('run', { run: last })).state,
  };
}

async function throughput() {
  const total = quick ? 400 : 2000;
  const capacity = Number(process.env.BENCH_CAPACITY ?? 1);
  // The yardstick is measured right before builder's run and again right after it, and builder's
  // figure is reported as a share of the mean of the two: the machine's speed drifts by the
  // minute, and one measurement seconds before would carry that drift into the share. Each side
  // runs its jobs twice: in fresh processes (`cold`, the figure with the target, as measured from
  // the start), then again in the same, warm processes (V8 has compiled and optimised by then:
  // what a long-running server and workers see).
  const before = await bareSpawnRate(total, 4, capacity);
  // the same with the spawn builder's workers use: what is left to gain beyond how jobs start
  const barePosix = await bareSpawnRate(total, 4, capacity, 'posix');
  const c = await startCluster({ workers: 4, capacity });
  const cpuOf = () => {
    const workers = c.workerPids.map(cpuSeconds);
    return {
      server: cpuSeconds(c.server.pid).own,
      workers: workers.reduce((n, w) => n + w.own, 0),
      jobs: workers.reduce((n, w) => n + w.children, 0),
    };
  };
  const run = {};
  try {
    await c.rpc.call('schedule', {
      name: 'tp',
      platforms: ['bench'],
      script: 'true',
      schedule: null,
      concurrency: 1000,
    });
    run.cold = await jobsThrough(c, total, cpuOf);
    run.warm = await jobsThrough(c, total, cpuOf);
    run.failed = (await c.rpc.call('runs', { job: 'tp', state: 'failed', limit: 1000 })).length;
    run.peakRss = c.serverPeakRssMiB();
  } finally {
    await c.stop();
  }
  const after = await bareSpawnRate(total, 4, capacity);
  const round = (x) => Math.round(x * 100) / 100;
  const perJob = (s) => (1000 * s) / total;
  for (const phase of ['cold', 'warm']) {
    // cold: the names the figures have had from the start; warm: the same with `_warm`
    const name = (n) => (phase === 'cold' ? n : `${n}_warm`);
    const bare = (before[phase].rate + after[phase].rate) / 2;
    const { rate } = run[phase];
    report(name('throughput_bare_spawn'), bare, 'jobs/s', {
      before: round(before[phase].rate),
      after: round(after[phase].rate),
      jobs: total,
      processes: 4,
      capacity,
    });
    report(name('throughput_share_of_bare_spawn'), (100 * rate) / bare, '%');
    report(name('throughput_bare_posix_spawn'), barePosix[phase].rate, 'jobs/s', {
      jobs: total,
      processes: 4,
      capacity,
    });
    report(name('throughput_share_of_bare_posix_spawn'), (100 * rate) / barePosix[phase].rate, '%');
    report(name('throughput_trivial_jobs'), rate, 'jobs/s', {
      jobs: total,
      workers: 4,
      capacity,
      seconds: round(run[phase].seconds),
      ...(phase === 'warm' && { failed: run.failed }),
      last: run[phase].last,
    });
    // where the time goes, in CPU per job (less sensitive to the machine's load than the rates):
    // the bare spawners and their `sh` (both measurements), then builder's server, workers and jobs
    const bareCpu = (k) => perJob((before[phase].cpu[k] + after[phase].cpu[k]) / 2);
    report(name('cpu_per_job_bare_spawner'), bareCpu('own'), 'ms');
    report(name('cpu_per_job_bare_sh'), bareCpu('children'), 'ms');
    report(name('cpu_per_job_server'), perJob(run[phase].cpu.server), 'ms');
    report(name('cpu_per_job_workers'), perJob(run[phase].cpu.workers), 'ms');
    report(name('cpu_per_job_job_processes'), perJob(run[phase].cpu.jobs), 'ms');
  }
  report('throughput_server_peak_rss', run.peakRss, 'MiB');
}

async function bigConsole() {
  const bytes = (quick ? 20 : 200) * 1024 * 1024;
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
    if (run.state !== 'succeeded') throw new Error(`console bench: the run ended ${run.state}`);
    const mib = bytes / 1024 / 1024;
    report(`console_${mib}mib_to_file`, fileSeconds, 's');
    report(`console_${mib}mib_through_builder`, seconds, 's');
    report(`console_${mib}mib_ratio_to_file`, seconds / fileSeconds, '×');
    report(`console_${mib}mib_server_peak_rss`, c.serverPeakRssMiB(), 'MiB');
  } finally {
    await c.stop();
  }
}

/**
 * Start overhead of the chroot sandbox: median wall time of one `true` job through the executor's
 * run() (setup, job, teardown), chroot minus host. Needs root, bubblewrap and a rootfs (debian/mkroot;
 * default .build/roots/bookworm, or BENCH_CHROOT_ROOT); skipped otherwise.
 */
async function chrootOverhead() {
  const root = process.env.BENCH_CHROOT_ROOT ?? join(import.meta.dirname, '../.build/roots/bookworm');
  if (process.getuid?.() !== 0 || !existsSync(join(root, 'etc/os-release'))) {
    report('chroot_overhead_median', null, 'ms', { skipped: `needs root and a rootfs at ${root} (debian/mkroot)` });
    return;
  }
  const { ChrootExecutor } = await import('../packages/worker/dist/executors/chroot.js');
  const { HostExecutor } = await import('../packages/worker/dist/executors/host.js');
  const { compileChrootOptions } = await import('../packages/worker/dist/executors/chroot-options.js');
  const { PassThrough } = await import('node:stream');
  const dir = mkdtempSync(join(tmpdir(), 'builder-bench-chroot-'));
  const log = { info() {}, warn() {}, error() {}, debug() {}, child: () => log };
  const deps = { platform: 'bench', log, env: { PATH: process.env.PATH } };
  const executors = {
    host: new HostExecutor({ ...deps, workDir: join(dir, 'host') }),
    chroot: new ChrootExecutor({
      ...deps,
      workDir: join(dir, 'chroot'),
      // the tests' range (packages/worker/src/test-support/chroot-root.ts): the base is shifted to it once
      chroot: compileChrootOptions({ root, idRange: process.env.BENCH_ID_RANGE ?? '1000000:65536' }),
    }),
  };
  const jobs = quick ? 10 : 60;
  const medians = {};
  try {
    for (const [name, executor] of Object.entries(executors)) {
      await executor.cleanup();
      const samples = [];
      for (let i = 0; i < jobs + 5; i++) {
        const runId = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
        const io = {
          stdout: new PassThrough().resume(),
          stderr: new PassThrough().resume(),
          note() {},
          signal: new AbortController().signal,
          killGraceMs: 1000,
          started() {},
          collectOutput: async () => {},
          log,
        };
        const job = {
          runId,
          attempt: 1,
          job: 'b',
          number: i,
          platform: 'bench',
          script: 'true',
          params: {},
          secrets: {},
        };
        const t0 = performance.now();
        const result = await executor.run({ ...job, timeoutSec: 60, killGraceSec: 1 }, io);
        if (result.kind !== 'exited' || result.code !== 0) throw new Error(`${name}: ${JSON.stringify(result)}`);
        if (i >= 5) samples.push(performance.now() - t0); // first 5: warm-up
      }
      samples.sort((a, b) => a - b);
      medians[name] = percentile(samples, 50);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  report('chroot_overhead_median', medians.chroot - medians.host, 'ms', {
    jobs,
    chrootMs: medians.chroot,
    hostMs: medians.host,
  });
}

/**
 * 1 GiB artifact over loopback (`builder-client upload`'s path: manifest + tar, the server hashing
 * and staging every byte before it is stored), and the server's peak RSS meanwhile.
 */
async function artifactUpload() {
  const bytes = quick ? 64 * 1024 ** 2 : 1024 ** 3;
  const c = await startCluster({ workers: 0 });
  const file = join(c.dir, 'big.bin');
  try {
    // sync: the source file was just written; its writeback must not be charged to the upload
    execFileSync('/bin/sh', ['-c', `head -c ${bytes} /dev/urandom > ${file} && sync`]);
    await c.rpc.call('schedule', { name: 'up', platforms: ['bench'], script: 'true', schedule: null });
    const t0 = performance.now();
    const { size, sha256 } = await hashFile(file);
    const t1 = performance.now();
    const r = await sendArtifacts({
      url: `${c.url}/upload/up`,
      token: c.adminToken,
      files: [{ path: 'big.bin', source: file, size, sha256 }],
    });
    const t2 = performance.now();
    if (!r.ok) throw new Error(`upload refused: ${r.error}`);
    const mb = bytes / 1e6;
    const label = quick ? '64mib' : '1gib';
    report(`artifact_${label}_upload`, mb / ((t2 - t1) / 1000), 'MB/s', { seconds: Math.round(t2 - t1) / 1000 });
    report(`artifact_${label}_hash_and_upload`, mb / ((t2 - t0) / 1000), 'MB/s', {
      hashSeconds: Math.round(t1 - t0) / 1000,
    });
    report(`artifact_${label}_server_peak_rss`, c.serverPeakRssMiB(), 'MiB');
  } finally {
    await c.stop();
  }
}

const benches = {
  dispatchLatency,
  throughput,
  bigConsole,
  thousandWorkers: () => thousandWorkers({ quick }),
  longHistory: () => longHistory({ quick }),
  chrootOverhead,
  artifactUpload,
};
if (only && !(only in benches)) {
  process.stderr.write(`no bench ${only}: one of ${Object.keys(benches).join(', ')}\n`);
  process.exit(2);
}

const median = (sorted) =>
  sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;

const printed = [];
for (const [name, fn] of Object.entries(benches)) {
  if (only && only !== name) continue;
  const t0 = performance.now();
  const byName = new Map();
  for (let i = 0; i < repeat; i++) {
    for (const f of await collectFigures(fn)) {
      if (!byName.has(f.name)) byName.set(f.name, []);
      byName.get(f.name).push(f);
    }
  }
  for (const [figure, reps] of byName) {
    const { value, ...last } = reps.at(-1);
    if (value === null) {
      process.stdout.write(`${JSON.stringify(reps.at(-1))}\n`);
      continue;
    }
    const values = reps.map((r) => r.value);
    const sorted = [...values].sort((a, b) => a - b);
    const { name: _, unit, ...extra } = last;
    const out = { name: figure, value: median(sorted), unit, min: sorted[0], max: sorted.at(-1), values, ...extra };
    if (!quick) Object.assign(out, checkTarget(figure, out.value));
    printed.push(out);
    process.stdout.write(`${JSON.stringify(out)}\n`);
  }
  process.stderr.write(`bench ${name}: ${repeat} repetition(s) in ${Math.round((performance.now() - t0) / 1000)} s\n`);
}
const summary = summarizeTargets(printed);
if (summary) process.stderr.write(`${summary}\n`);
