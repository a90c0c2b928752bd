import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Mount points in `mountinfo` (field 5, octal escapes undone) at or under `dir`, deepest first. */
export function mountsUnder(dir: string, mountinfo = '/proc/self/mountinfo'): string[] {
  let text: string;
  try {
    text = readFileSync(mountinfo, 'utf8');
  } catch {
    return [];
  }
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const found: string[] = [];
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    const point = field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (point === dir || point.startsWith(prefix)) found.push(point);
  }
  // deepest first; a point mounted twice is listed twice and unmounted twice
  return found.sort((a, b) => b.length - a.length);
}

/**
 * Unmount everything at or under `dir` in the worker's mount namespace. The sandbox's own mounts
 * live in its private namespace and vanish with it; this is the backstop for anything else
 * (a mount made by hand, an older worker). Returns the mount points still there.
 */
export function unmountUnder(dir: string, onError: (text: string) => void): string[] {
  for (let round = 0; round < 3; round++) {
    const points = mountsUnder(dir);
    if (points.length === 0) return [];
    for (const point of points) {
      let r = spawnSync('umount', [point], { encoding: 'utf8' });
      // busy (a process of a dead sandbox still has it open): detach it now, it goes when released
      if (r.status !== 0) r = spawnSync('umount', ['-l', point], { encoding: 'utf8' });
      if (r.status !== 0) onError(`umount ${point}: ${(r.stderr || r.error?.message || '').trim()}`);
    }
  }
  return mountsUnder(dir);
}
