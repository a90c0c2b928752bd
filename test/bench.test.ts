/**
 * `pnpm bench --quick` as a smoke test: every bench runs to its end at small sizes and prints its
 * figures (a bench that no longer starts, or a figure that silently went missing, fails here; the
 * figures' values are the bench's business, not a test's; the chroot's start cost is left out, its
 * base belongs to the chroot tests running alongside). And what the full bench says about its
 * targets (bench/targets.mjs).
 */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkTarget, summarizeTargets } from '../bench/targets.mjs';
import { killLeftovers } from './harness.ts';

const RUN = join(import.meta.dirname, '../bench/run.mjs');
const NO_ROOT = join(tmpdir(), 'builder-bench-test-no-rootfs');
let running: number[] = [];
afterEach(() => {
  killLeftovers(running);
  running = [];
});

/** Run bench/run.mjs in a process group of its own (it and its servers and workers die together on failure). */
function bench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [RUN, ...args], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    // not the chroot tests' base: they may be building or id-shifting it right now
    env: { ...process.env, BENCH_CHROOT_ROOT: NO_ROOT },
  });
  running.push(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

interface Figure {
  name: string;
  value: number | null;
  unit: string;
  min?: number;
  max?: number;
  skipped?: string;
  met?: boolean;
}

describe('pnpm bench --quick', () => {
  it('runs every bench to its end and prints each figure as a line of JSON', { timeout: 240_000 }, async () => {
    const r = await bench(['--quick']);
    expect(r.code, r.stderr).toBe(0);
    const figures = r.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Figure);
    const byName = new Map(figures.map((f) => [f.name, f]));
    for (const name of [
      'dispatch_latency_p50',
      'dispatch_latency_p99',
      'throughput_trivial_jobs',
      'throughput_bare_spawn',
      'throughput_share_of_bare_spawn',
      'throughput_share_of_bare_posix_spawn',
      'cpu_per_job_workers',
      'throughput_share_of_bare_spawn_warm',
      'cpu_per_job_workers_warm',
      'console_20mib_ratio_to_file',
      'console_20mib_server_peak_rss',
      'thousand_workers_run_rate',
      'thousand_workers_dispatch_p50',
      'thousand_workers_server_rss',
      'history_site_job_p99',
      'history_rpc_runs_p99',
      'history_db_bytes_per_run',
      'artifact_64mib_upload',
    ]) {
      const f = byName.get(name);
      expect(f, `${name} missing from:\n${r.stdout}`).toBeDefined();
      expect(f!.value, name).toBeGreaterThan(0);
      expect(f!.min! <= f!.value! && f!.value! <= f!.max!, name).toBe(true);
    }
    expect(byName.get('thousand_workers_exactly_once')?.value).toBe(1);
    // the chroot's start cost needs a rootfs; without one it is skipped, saying why
    expect(byName.get('chroot_overhead_median')).toMatchObject({
      value: null,
      skipped: expect.stringContaining(NO_ROOT),
    });
    // the targets are for the full sizes: a quick run claims none
    expect(figures.some((f) => 'met' in f)).toBe(false);
    expect(r.stderr).not.toMatch(/^targets:/m);
    for (const name of [
      'dispatchLatency',
      'throughput',
      'bigConsole',
      'thousandWorkers',
      'longHistory',
      'artifactUpload',
    ]) {
      expect(r.stderr).toContain(`bench ${name}: 1 repetition(s)`);
    }
  });

  it('names the benches there are when asked for one that is not', async () => {
    const r = await bench(['nosuch']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no bench nosuch: one of dispatchLatency, throughput, bigConsole');
    expect(r.stdout).toBe('');
  });
});

describe("the full bench's targets", () => {
  it('marks each figure that has one, and sums them up missed first', () => {
    expect(checkTarget('dispatch_latency_p50', 2.8)).toEqual({ target: '<= 2', met: false });
    expect(checkTarget('throughput_share_of_bare_spawn', 50)).toEqual({ target: '>= 50', met: true });
    expect(checkTarget('thousand_workers_server_rss', 150)).toEqual({ target: '< 150', met: false });
    expect(checkTarget('throughput_trivial_jobs', 300)).toBeUndefined();
    expect(checkTarget('dispatch_latency_p50', null)).toBeUndefined();
    const figures = [
      { name: 'thousand_workers_exactly_once', value: 1, unit: 'bool', min: 1, max: 1 },
      { name: 'dispatch_latency_p50', value: 2.8, unit: 'ms', min: 2.5, max: 3.1 },
      { name: 'throughput_trivial_jobs', value: 300, unit: 'jobs/s', min: 290, max: 310 },
    ].map((f) => ({ ...f, ...checkTarget(f.name, f.value) }));
    expect(summarizeTargets(figures).split('\n')).toEqual([
      'targets: 1 of 2 met',
      '  MISSED dispatch_latency_p50 2.8 ms (target <= 2; 2.5–3.1)',
      '  met    thousand_workers_exactly_once 1 bool (target = 1; 1–1)',
    ]);
    expect(summarizeTargets([figures[2]!])).toBe('');
  });
});
