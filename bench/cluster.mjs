// Shared by the benchmarks: a real server process, real worker processes and a raw RPC connection.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from '../packages/client/node_modules/ws/index.js';
import { bin, createToken, startServerProcess } from '../scripts/local-server.mjs';
import { cpuSeconds } from './proc-cpu.mjs';

// BENCH_PROFILE=DIR writes a CPU profile of the server and workers there
export const nodeFlags = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];

export async function startCluster({ workers = 1, capacity = 1, platform = 'bench' } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'builder-bench-'));
  const data = join(dir, 'data');
  const admin = createToken(data, 'admin');
  const wtoken = createToken(data, 'worker', 'bw*');
  const procs = [];
  const { server, url } = await startServerProcess(data, nodeFlags);
  procs.push(server);
  for (let i = 0; i < workers; i++) {
    procs.push(
      spawn(
        process.execPath,
        [
          ...nodeFlags,
          bin('worker'),
          '--remote',
          url,
          '--token',
          wtoken,
          '--platform',
          platform,
          '--name',
          `bw${i}`,
          '--capacity',
          String(capacity),
          '--executor',
          'host',
          '--work-dir',
          join(process.env.BENCH_WORK_DIR ?? dir, `work${i}`),
        ],
        { stdio: 'ignore' },
      ),
    );
  }
  const rpc = await connect(url, admin);
  for (;;) {
    const info = await rpc.call('info', {});
    if (info.workers.filter((w) => w.connected).length === workers) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    rpc,
    dir,
    adminToken: admin,
    /** A worker token for any name starting with `bw`. */
    workerToken: wtoken,
    server,
    /** Peak resident memory of the server process so far, in MiB (Linux VmHWM). */
    serverPeakRssMiB() {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : NaN;
    },
    /** The worker processes' pids, in the order they were started. */
    workerPids: procs.slice(1).map((p) => p.pid),
    /** Resident memory of the server process now, in MiB (VmRSS). */
    serverRssMiB() {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : NaN;
    },
    /** Resident memory of the server's malloc heap (the `[heap]` mapping: SQLite, sockets, Buffers), in MiB. */
    serverMallocHeapMiB() {
      const m = /\[heap\]\n(?:.*\n)*?Rss:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/smaps`, 'utf8'));
      return m ? Number(m[1]) / 1024 : NaN;
    },
    /** CPU time the server process has used so far (user + system), in seconds. */
    serverCpuSeconds() {
      return cpuSeconds(server.pid).own;
    },
    async stop() {
      rpc.close();
      for (const p of procs) p.kill(nodeFlags.length ? 'SIGINT' : 'SIGKILL');
      await Promise.all(procs.map((p) => (p.exitCode !== null ? null : new Promise((r) => p.on('exit', r)))));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function connect(url, token) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`, { maxPayload: 64 * 1024 * 1024 });
  const pending = new Map();
  const listeners = new Set();
  let id = 0;
  await new Promise((ok, fail) => {
    ws.once('error', fail);
    ws.once('open', () => ws.send(JSON.stringify({ type: 'hello', versions: [1], role: 'client', token })));
    ws.once('message', (m) => (JSON.parse(m).type === 'welcome' ? ok() : fail(new Error(String(m)))));
  });
  ws.on('message', (m) => {
    const msg = JSON.parse(m);
    if (msg.type === 'response') {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.ok) p?.ok(msg.result);
      else p?.fail(new Error(`${msg.error.code}: ${msg.error.message}`));
    } else if (msg.type === 'event') for (const l of listeners) l(msg);
  });
  return {
    call(method, params) {
      return new Promise((ok, fail) => {
        const n = ++id;
        pending.set(n, { ok, fail });
        ws.send(JSON.stringify({ type: 'request', id: n, method, params }));
      });
    },
    onEvent(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    close: () => ws.close(),
  };
}

/**
 * Resolve once nothing is queued or running any more. Call it after waitForEnd on the last queued
 * run (FIFO: it is among the last to end), not instead: each `info` describes up to 100 queued runs.
 */
export async function waitForIdle(rpc) {
  for (;;) {
    const info = await rpc.call('info', {});
    const busy = info.platforms.reduce((n, p) => n + p.queued + p.running, 0);
    if (busy === 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolve when the run ends (observe without console). */
export async function waitForEnd(rpc, runId) {
  return new Promise((ok, fail) => {
    let sub;
    // a run already over ends its subscription in the frames right after the response, which ws
    // may hand over before the response's promise has settled: keep ends until `sub` is known
    const early = new Map();
    const off = rpc.onEvent((e) => {
      if (e.event.kind !== 'end') return;
      if (sub === undefined) early.set(e.sub, e.event.run);
      else if (e.sub === sub) (off(), ok(e.event.run));
    });
    rpc.call('observe', { run: runId, console: false }).then((r) => {
      sub = r.sub;
      if (early.has(sub)) (off(), ok(early.get(sub)));
    }, fail);
  });
}

/** Where `report` puts figures while a repetition runs (run.mjs); null: print each at once. */
let sink = null;

/** Run `fn` collecting its figures instead of printing them; resolves with them. */
export async function collectFigures(fn) {
  const figures = [];
  sink = figures;
  try {
    await fn();
  } finally {
    sink = null;
  }
  return figures;
}

export function report(name, value, unit, extra = {}) {
  const figure = { name, value: value === null ? null : Math.round(value * 100) / 100, unit, ...extra };
  if (sink) sink.push(figure);
  else process.stdout.write(`${JSON.stringify(figure)}\n`);
}

export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
