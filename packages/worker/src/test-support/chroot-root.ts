/**
 * The base rootfs the chroot tests run on: `.build/roots/bookworm` in the repo (ignored by git),
 * made once by debian/mkroot and reused. Test files running in parallel share it: whoever gets
 * the lock (a directory) builds, the others wait for it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../../../..');
export const ROOTFS = join(REPO, '.build/roots/bookworm');
const MKROOT = join(REPO, 'debian/mkroot');
const LOCK = `${ROOTFS}.lock`;
/**
 * The host ids the tests' sandboxes map their 0…65535 to (the base rootfs is shifted to them on
 * first use). Fixed, so that every test file and the benchmark agree on the one base.
 */
export const TEST_ID_RANGE = '1000000:65536';
/** debootstrap takes ~25 s to a few minutes depending on the mirror; the hook timeout to use. */
export const ROOTFS_TIMEOUT_MS = 900_000;

/** Why the chroot tests cannot run here, or undefined. */
export function chrootSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'the chroot executor is Linux-only';
  if (process.getuid?.() !== 0) return 'needs root (mounts, namespaces, cgroups): run the tests as root';
  if (spawnSync('sh', ['-c', 'command -v bwrap']).status !== 0)
    return 'bubblewrap is not installed (apt-get install bubblewrap)';
  if (haveRootfs()) return undefined;
  const found = ['/usr/sbin/debootstrap', '/sbin/debootstrap', '/usr/bin/debootstrap'].some((p) => existsSync(p));
  if (!found && spawnSync('sh', ['-c', 'command -v debootstrap']).status !== 0)
    return `no rootfs at ${ROOTFS} and debootstrap is not installed (apt-get install debootstrap)`;
  return undefined;
}

function haveRootfs(): boolean {
  return existsSync(join(ROOTFS, 'etc/os-release')) && existsSync(join(ROOTFS, 'etc/builder-root.json'));
}

export async function ensureRootfs(): Promise<void> {
  const deadline = Date.now() + ROOTFS_TIMEOUT_MS;
  mkdirSync(join(REPO, '.build/roots'), { recursive: true });
  while (!haveRootfs()) {
    let locked = false;
    try {
      mkdirSync(LOCK);
      locked = true;
    } catch {
      // someone else builds it
    }
    if (locked) {
      try {
        if (!haveRootfs()) {
          // a half-made root from an interrupted run: debian/mkroot refuses a non-empty DIR
          if (existsSync(ROOTFS)) execFileSync('rm', ['-rf', ROOTFS]);
          execFileSync(MKROOT, ['bookworm', ROOTFS], { stdio: ['ignore', 'inherit', 'inherit'] });
        }
      } finally {
        rmdirSync(LOCK);
      }
      return;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${LOCK} (remove it if stale)`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * A copy of the base at `dest` (a new directory): for tests that change a base. ROOTFS is the
 * symlink debian/mkroot keeps pointing at the current base, so its contents are copied, not it.
 */
export function copyRootfs(dest: string): void {
  mkdirSync(dest);
  execFileSync('cp', ['-a', `${ROOTFS}/.`, dest]);
}
