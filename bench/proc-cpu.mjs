// CPU accounting from /proc (Linux), shared by the benches and the bare spawner (which must stay a
// small process: it is the baseline builder's workers are compared with).
import { readFileSync } from 'node:fs';

/** USER_HZ: the unit of the times in /proc/PID/stat. */
const TICKS_PER_SECOND = 100;

/**
 * CPU seconds a process has used so far: its own user + system time, and that of the children it
 * has waited for (a worker's job processes, once reaped). `pid` 'self': this process.
 */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the command name may hold spaces and parentheses: the fields start after the last ')'
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  return { own: (f[11] + f[12]) / TICKS_PER_SECOND, children: (f[13] + f[14]) / TICKS_PER_SECOND };
}
