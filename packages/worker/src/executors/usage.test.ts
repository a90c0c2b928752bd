import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cgroupUsage, type RunCgroup } from './chroot-cgroup.ts';
import { ProcUsageSampler } from './usage.ts';

describe.skipIf(process.platform !== 'linux')('CPU time and memory from /proc', () => {
  it("counts a job's processes, also the children it already reaped", async () => {
    // the CPU is spent in a child of the job's shell, which the shell waits for before sleeping
    const child = spawn('/bin/sh', ['-c', 'sh -c "i=0; while [ \\$i -lt 150000 ]; do i=\\$((i+1)); done"; sleep 0.6'], {
      stdio: 'ignore',
    });
    const sampler = new ProcUsageSampler(child.pid!);
    await new Promise((r) => child.once('exit', r));
    const usage = sampler.stop()!;
    expect(usage.source).toBe('proc');
    expect(usage.cpuMs).toBeGreaterThan(0);
    expect(usage.peakMemoryBytes).toBeGreaterThan(0);
  });

  it('counts a job that ended before the first sample (its process not reaped yet)', async () => {
    const child = spawn('/bin/sh', ['-c', 'exit 0'], { stdio: 'ignore' });
    // block the event loop: the job exits meanwhile and Node cannot reap it, so it is a zombie now
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
    const sampler = new ProcUsageSampler(child.pid!);
    await new Promise((r) => child.once('exit', r));
    expect(sampler.stop()).toMatchObject({ source: 'proc', cpuMs: expect.any(Number) });
  });

  it('measures nothing for a process that is gone', () => {
    expect(new ProcUsageSampler(2 ** 22 + 12345).stop()).toBeUndefined();
  });

  it("takes the kernel's CPU figure for the reaped job where it comes, the larger of the two", async () => {
    // not sampled (the first sample waits when the job's end brings its CPU): that figure, and no
    // memory figure rather than a guess
    const child = spawn('/bin/sh', ['-c', 'sleep 0.4'], { stdio: 'ignore' });
    expect(new ProcUsageSampler(child.pid!, false).stop(12.5)).toEqual({
      cpuMs: 12.5,
      peakMemoryBytes: null,
      source: 'proc',
    });
    // sampled as well: the larger CPU figure, the sampled memory
    const usage = new ProcUsageSampler(child.pid!).stop(12.5)!;
    expect(usage.cpuMs).toBe(12.5);
    expect(usage.peakMemoryBytes).toBeGreaterThan(0);
    child.kill();
    await new Promise((r) => child.once('exit', r));
  });
});

describe("a cgroup's figures", () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const files = (sub: string, content: Record<string, string>) => {
    const d = join(dir, sub);
    mkdirSync(d, { recursive: true });
    for (const [name, text] of Object.entries(content)) writeFileSync(join(d, name), text);
    return d;
  };
  const sampled = { cpuMs: 40, peakMemoryBytes: 1000, source: 'proc' } as const;

  it('reads cgroup v2 cpu.stat and memory.peak', () => {
    dir = mkdtempSync(join(tmpdir(), 'cg-'));
    const d = files('run', { 'cpu.stat': 'usage_usec 2500000\nuser_usec 2000000\n', 'memory.peak': '7340032\n' });
    const cg: RunCgroup = { version: 2, dirs: [d], procsFiles: [] };
    expect(cgroupUsage(cg, sampled)).toEqual({ cpuMs: 2500, peakMemoryBytes: 7340032, source: 'cgroup' });
    // a kernel before 5.19 has no memory.peak: the sampled peak stands in
    rmSync(join(d, 'memory.peak'));
    expect(cgroupUsage(cg, sampled)).toEqual({ cpuMs: 2500, peakMemoryBytes: 1000, source: 'cgroup' });
  });

  it('reads cgroup v1 cpuacct.usage where cpuacct is mounted with cpu, else keeps the sampled CPU', () => {
    dir = mkdtempSync(join(tmpdir(), 'cg-'));
    const memory = files('memory', { 'memory.max_usage_in_bytes': '123456\n' });
    const pids = files('pids', {});
    const cpu = files('cpu', { 'cpuacct.usage': '1500000000\n' });
    const cg: RunCgroup = { version: 1, dirs: [memory, pids, cpu], procsFiles: [] };
    expect(cgroupUsage(cg, sampled)).toEqual({ cpuMs: 1500, peakMemoryBytes: 123456, source: 'cgroup' });
    rmSync(join(cpu, 'cpuacct.usage'));
    expect(cgroupUsage(cg, sampled)).toEqual({ cpuMs: 40, peakMemoryBytes: 123456, source: 'cgroup+proc' });
    expect(cgroupUsage(cg, undefined)).toBeUndefined();
  });
});
