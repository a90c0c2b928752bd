import { readFileSync, readdirSync } from 'node:fs';
import type { RunUsage } from '@builder/protocol';

/** How often the job's processes are sampled where there is no cgroup to ask. */
export const SAMPLE_MS = 250;
/** USER_HZ: the unit of the times in /proc/PID/stat (100 on every Linux the worker runs on). */
const TICKS_PER_SECOND = 100;

/**
 * CPU time and peak memory of a job's process tree, sampled from /proc (Linux; elsewhere it
 * measures nothing). Each sample walks the tree from the job's first process through
 * /proc/PID/task/TID/children and sums utime+stime+cutime+cstime (a reaped child's time moves
 * into its parent's cutime/cstime, so finished processes still count) and the resident sizes;
 * the largest sums seen are the answer. What ran between the last sample and the end is missed,
 * unless the kernel's CPU figure for the reaped job comes along (`stop(exitCpuMs)`, the native
 * spawn): it counts the job's first process and every descendant it waited for, to the end, so
 * then the first sample waits SAMPLE_MS (a short job costs no /proc walk) and the samples only add
 * the CPU of processes nobody waited for, and the memory figure. A job over before its first
 * sample has no memory figure then (null): the one sample taken as it exec'd showed only a shell
 * starting, not what the job used.
 */
export class ProcUsageSampler {
  readonly #root: number;
  #cpuTicks = 0;
  #peakBytes = 0;
  #samples = 0;
  #timer: NodeJS.Timeout | undefined;

  /** `sampleNow`: take the first sample at once (false when the job's end brings its CPU time). */
  constructor(pid: number, sampleNow = true) {
    this.#root = pid;
    if (sampleNow) this.sample();
    this.#timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.#timer.unref();
  }

  sample(): void {
    let ticks = 0;
    let rss = 0;
    let hwm = 0;
    let found = false;
    const seen = new Set<number>();
    const todo = [this.#root];
    while (todo.length > 0 && seen.size < 100_000) {
      const pid = todo.pop()!;
      if (seen.has(pid)) continue;
      seen.add(pid);
      const stat = read(`/proc/${pid}/stat`);
      if (stat === undefined) continue;
      // the command name may hold spaces and parentheses: the fields start after the last ')'
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const times = [11, 12, 13, 14].reduce((n, i) => n + (Number(f[i]) || 0), 0);
      if (f[0] === 'Z') {
        // a zombie's times are about to move into its parent's; the job's own first process has
        // none of ours to move into (a job that ended before the first sample), so it counts here
        if (pid === this.#root) {
          found = true;
          ticks += times;
        }
        continue;
      }
      found = true;
      ticks += times;
      const status = read(`/proc/${pid}/status`) ?? '';
      const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
      rss += kb('VmRSS');
      hwm = Math.max(hwm, kb('VmHWM'));
      for (const tid of list(`/proc/${pid}/task`)) {
        for (const child of (read(`/proc/${pid}/task/${tid}/children`) ?? '').split(' ')) {
          if (child.trim() !== '') todo.push(Number(child));
        }
      }
    }
    if (!found) return;
    this.#samples++;
    this.#cpuTicks = Math.max(this.#cpuTicks, ticks);
    // one process's own high-water mark catches a peak between two samples
    this.#peakBytes = Math.max(this.#peakBytes, rss, hwm);
  }

  /**
   * Stop sampling; with `exitCpuMs`, the kernel's figure for the reaped job, the larger of it and
   * the sampled one (each is a lower bound). Undefined when nothing was measured (no /proc: not Linux).
   */
  stop(exitCpuMs?: number): RunUsage | undefined {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#samples === 0 && exitCpuMs === undefined) return undefined;
    return {
      cpuMs: Math.max((this.#cpuTicks * 1000) / TICKS_PER_SECOND, exitCpuMs ?? 0),
      peakMemoryBytes: this.#samples > 0 ? this.#peakBytes : null,
      source: 'proc',
    };
  }
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function list(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}
