import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunUsage } from '@builder/protocol';
import { describeError } from '../errors.ts';

/** Where the cgroup hierarchies are; a parameter so tests could point elsewhere. */
export const CGROUP_ROOT = '/sys/fs/cgroup';
/** Every run's cgroup is `<controller>/builder/<run dir name>` (v1) or `builder/<run dir name>` (v2). */
export const CGROUP_PARENT = 'builder';

export interface Limits {
  readonly memoryLimit: number | undefined;
  readonly pidsLimit: number;
  readonly cpuShares: number | undefined;
}

/**
 * One run's cgroup(s): v1 (one directory per controller: memory, pids, cpu) or v2 (one
 * directory in the unified hierarchy). `procsFiles` are what the sandbox's first process writes
 * `0` to (itself) before it execs unshare, so everything of the run is inside from the start.
 */
export interface RunCgroup {
  readonly version: 1 | 2;
  readonly dirs: readonly string[];
  readonly procsFiles: readonly string[];
}

export function cgroupVersion(root = CGROUP_ROOT): 1 | 2 {
  return existsSync(join(root, 'cgroup.controllers')) ? 2 : 1;
}

const V1_CONTROLLERS = ['memory', 'pids', 'cpu'] as const;

/** Create the run's cgroup and write its limits. Throws with the file that failed. */
export function createCgroup(name: string, limits: Limits, root = CGROUP_ROOT): RunCgroup {
  const version = cgroupVersion(root);
  const write = (file: string, value: string) => {
    try {
      writeFileSync(file, value);
    } catch (err) {
      throw new Error(`cannot write ${value} to ${file}: ${describeError(err)}`);
    }
  };
  const mkdir = (dir: string) => {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new Error(`cannot create cgroup ${dir}: ${describeError(err)}`);
    }
  };
  if (version === 2) {
    const parent = join(root, CGROUP_PARENT);
    mkdir(parent);
    // the controllers must be enabled for the children of every level down to the run's cgroup
    for (const dir of [root, parent]) {
      const wanted = ['memory', 'pids', 'cpu'].filter((c) =>
        readFileSync(join(dir, 'cgroup.controllers'), 'utf8').split(/\s+/).includes(c),
      );
      if (wanted.length) write(join(dir, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
    }
    const dir = join(parent, name);
    mkdir(dir);
    const cg: RunCgroup = { version, dirs: [dir], procsFiles: [join(dir, 'cgroup.procs')] };
    try {
      if (limits.memoryLimit !== undefined) {
        write(join(dir, 'memory.max'), String(limits.memoryLimit));
        if (existsSync(join(dir, 'memory.swap.max'))) write(join(dir, 'memory.swap.max'), '0');
      }
      write(join(dir, 'pids.max'), String(limits.pidsLimit));
      // cpu.shares 2…262144 → cpu.weight 1…10000, the mapping the kernel docs and runc use
      if (limits.cpuShares !== undefined)
        write(join(dir, 'cpu.weight'), String(1 + Math.floor(((limits.cpuShares - 2) * 9999) / 262142)));
    } catch (err) {
      removeCgroup(cg);
      throw err;
    }
    return cg;
  }
  const dirs: string[] = [];
  const cg: RunCgroup = { version, dirs, procsFiles: [] };
  try {
    for (const controller of V1_CONTROLLERS) {
      const base = join(root, controller);
      if (!existsSync(join(base, 'cgroup.procs'))) {
        throw new Error(`the ${controller} cgroup controller is not mounted at ${base}`);
      }
      const dir = join(base, CGROUP_PARENT, name);
      mkdir(dir);
      dirs.push(dir);
      (cg.procsFiles as string[]).push(join(dir, 'cgroup.procs'));
    }
    const [memory, pids, cpu] = dirs as [string, string, string];
    if (limits.memoryLimit !== undefined) {
      write(join(memory, 'memory.limit_in_bytes'), String(limits.memoryLimit));
      // no swapping around the limit: memsw (when swap accounting is on), else swappiness 0
      const memsw = join(memory, 'memory.memsw.limit_in_bytes');
      if (existsSync(memsw)) write(memsw, String(limits.memoryLimit));
      else if (existsSync(join(memory, 'memory.swappiness'))) write(join(memory, 'memory.swappiness'), '0');
    }
    write(join(pids, 'pids.max'), String(limits.pidsLimit));
    if (limits.cpuShares !== undefined) write(join(cpu, 'cpu.shares'), String(limits.cpuShares));
  } catch (err) {
    removeCgroup(cg);
    throw err;
  }
  return cg;
}

/** The pids in the run's cgroup(s). */
export function cgroupPids(cg: RunCgroup): number[] {
  const pids = new Set<number>();
  for (const dir of cg.dirs) {
    let text = '';
    try {
      text = readFileSync(join(dir, 'cgroup.procs'), 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) if (line) pids.add(Number(line));
  }
  return [...pids];
}

/**
 * SIGKILL everything in the cgroup until it is empty (a fork bomb refills it while we read), then
 * remove it. Killing the sandbox's pid 1 takes its whole pid namespace with it. Returns what
 * could not be removed (empty on success).
 */
export async function killAndRemoveCgroup(cg: RunCgroup, timeoutMs = 5000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const kill = cg.version === 2 ? join(cg.dirs[0] as string, 'cgroup.kill') : undefined;
    if (kill && existsSync(kill)) {
      try {
        writeFileSync(kill, '1');
      } catch {
        // fall back to one by one
      }
    }
    const pids = cgroupPids(cg);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    const left = removeCgroup(cg);
    if (left.length === 0) return [];
    if (Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** rmdir each directory that exists; returns those that could not be removed (still busy). */
export function removeCgroup(cg: RunCgroup): string[] {
  const left: string[] = [];
  for (const dir of cg.dirs) {
    try {
      rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') left.push(dir);
    }
  }
  return left;
}

/** The run cgroup names under builder/ (all controllers), for cleanup() to match against its run dirs. */
export function findCgroups(names: RegExp, root = CGROUP_ROOT): Map<string, RunCgroup> {
  const version = cgroupVersion(root);
  const parents = version === 2 ? [join(root, CGROUP_PARENT)] : V1_CONTROLLERS.map((c) => join(root, c, CGROUP_PARENT));
  const found = new Map<string, RunCgroup>();
  for (const parent of parents) {
    let entries: string[] = [];
    try {
      entries = readdirSync(parent);
    } catch {
      continue;
    }
    for (const entry of entries) {
      if (!names.test(entry)) continue;
      const dir = join(parent, entry);
      const cg = found.get(entry) ?? { version, dirs: [], procsFiles: [] };
      (cg.dirs as string[]).push(dir);
      (cg.procsFiles as string[]).push(join(dir, 'cgroup.procs'));
      found.set(entry, cg);
    }
  }
  return found;
}

/** Did the kernel's OOM killer act in this cgroup (v1: memory.oom_control, v2: memory.events)? */
export function oomKilled(cg: RunCgroup): boolean {
  for (const dir of cg.dirs) {
    for (const file of ['memory.oom_control', 'memory.events']) {
      try {
        const m = /^oom_kill (\d+)$/m.exec(readFileSync(join(dir, file), 'utf8'));
        if (m && Number(m[1]) > 0) return true;
      } catch {
        // not this version / controller
      }
    }
  }
  return false;
}

/**
 * What the run's cgroup used: CPU time (v2 cpu.stat usage_usec; v1 cpuacct.usage where cpuacct is
 * mounted with cpu) and peak memory (v2 memory.peak, kernel 5.19+; v1 memory.max_usage_in_bytes).
 * What the cgroup cannot tell comes from `sampled` (the job's process tree, sampled from /proc).
 */
export function cgroupUsage(cg: RunCgroup, sampled: RunUsage | undefined): RunUsage | undefined {
  const read = (file: string): number | undefined => {
    try {
      const text = readFileSync(file, 'utf8').trim();
      return /^\d+$/.test(text) ? Number(text) : undefined;
    } catch {
      return undefined;
    }
  };
  let cpuMs: number | undefined;
  let peak: number | undefined;
  if (cg.version === 2) {
    const dir = cg.dirs[0]!;
    let stat = '';
    try {
      stat = readFileSync(join(dir, 'cpu.stat'), 'utf8');
    } catch {
      // no cpu controller: the sampled figure stays
    }
    const usec = /^usage_usec (\d+)$/m.exec(stat)?.[1];
    if (usec !== undefined) cpuMs = Number(usec) / 1000;
    peak = read(join(dir, 'memory.peak'));
  } else {
    const [memory, , cpu] = cg.dirs;
    const ns = cpu === undefined ? undefined : read(join(cpu, 'cpuacct.usage'));
    if (ns !== undefined) cpuMs = ns / 1e6;
    peak = memory === undefined ? undefined : read(join(memory, 'memory.max_usage_in_bytes'));
  }
  if (cpuMs !== undefined)
    return { cpuMs, peakMemoryBytes: peak ?? sampled?.peakMemoryBytes ?? null, source: 'cgroup' };
  if (sampled === undefined) return undefined;
  return peak === undefined ? sampled : { ...sampled, peakMemoryBytes: peak, source: 'cgroup+proc' };
}
