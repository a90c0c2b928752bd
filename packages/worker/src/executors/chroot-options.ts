import { existsSync, lstatSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { parseSize } from '@builder/protocol';
import { UsageError } from '../errors.ts';
import { type IdRange, parseIdRange, subidRange } from './chroot-idmap.ts';

/** The `--root`, `--chroot-user` and limit flags as given (strings from argv). */
export interface ChrootOptionsInput {
  root?: string | undefined;
  user?: string | undefined;
  memoryLimit?: string | undefined;
  pidsLimit?: number | string | undefined;
  cpuShares?: number | string | undefined;
  /** `START[:COUNT]`; default: root's range in /etc/subuid and /etc/subgid. */
  idRange?: string | undefined;
}

export interface ChrootOptions {
  /** The read-only base rootfs: each job's root is an overlay over it. */
  readonly root: string;
  /** Who the script runs as inside (unless the run asks for root with BUILDER_ROOT=1). */
  readonly uid: number;
  readonly gid: number;
  /** Bytes; undefined: no memory limit. */
  readonly memoryLimit: number | undefined;
  /** Processes and threads of the whole sandbox (the setup included). */
  readonly pidsLimit: number;
  /** cgroup v1 cpu.shares (1024 is the default weight); undefined: not set. */
  readonly cpuShares: number | undefined;
  /** The host ids the sandbox's user namespace maps its 0…count-1 to: its root is `start` outside. */
  readonly idRange: IdRange;
}

export const CHROOT_DEFAULTS = {
  root: '/var/lib/builder/roots/debian-12',
  user: 'nobody',
  pidsLimit: 4096,
} as const;

const MKROOT_HINT = 'make one with `debian/mkroot bookworm DIR` (debootstrap --variant=minbase) and pass --root DIR';

export function compileChrootOptions(input: ChrootOptionsInput): ChrootOptions {
  const given = input.root ?? CHROOT_DEFAULTS.root;
  if (!isAbsolute(given)) throw new UsageError(`--root must be an absolute path (got "${given}")`);
  const root = resolve(given);
  if (root === '/') throw new UsageError('--root must not be /: it must be a separate rootfs');
  checkRootfs(root);
  const { uid, gid } = user(root, input.user ?? CHROOT_DEFAULTS.user);
  const memoryLimit = input.memoryLimit === undefined ? undefined : bytes(input.memoryLimit);
  const pidsLimit = integer(input.pidsLimit ?? CHROOT_DEFAULTS.pidsLimit, '--pids-limit', 8, 4_194_304);
  const cpuShares = input.cpuShares === undefined ? undefined : integer(input.cpuShares, '--cpu-shares', 2, 262_144);
  const idRange = input.idRange === undefined ? defaultIdRange() : parseIdRange(input.idRange);
  if (uid >= idRange.count || gid >= idRange.count) {
    throw new UsageError(
      `--chroot-user ${uid}:${gid} is outside the sandbox's ${idRange.count} ids (--id-range): pick a user below ${idRange.count}`,
    );
  }
  return { root, uid, gid, memoryLimit, pidsLimit, cpuShares, idRange };
}

function defaultIdRange(): IdRange {
  const range = subidRange();
  if (range) return range;
  throw new UsageError(
    'the chroot sandbox needs host ids for its user namespace (its root must not be root outside): ' +
      'add a line root:100000:65536 to /etc/subuid and /etc/subgid (usermod --add-subuids 100000-165535 ' +
      '--add-subgids 100000-165535 root), or pass --id-range 100000:65536',
  );
}

/** A directory with a shell and an os-release: what debootstrap makes. */
export function checkRootfs(root: string): void {
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    throw new UsageError(`--root ${root} does not exist: ${MKROOT_HINT}`);
  }
  if (!isDir) throw new UsageError(`--root ${root} is not a directory: ${MKROOT_HINT}`);
  for (const file of ['bin/sh', 'etc/os-release']) {
    // lexists: /bin/sh is a symlink to dash, os-release one to ../usr/lib/os-release
    if (!existsSync(join(root, file)) && !lexists(join(root, file))) {
      throw new UsageError(`--root ${root} is not a rootfs (no /${file}): ${MKROOT_HINT}`);
    }
  }
}

function lexists(path: string): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

/** `nobody`, `builder` (from the rootfs' passwd) or `UID:GID`. Root is not allowed here. */
function user(root: string, spec: string): { uid: number; gid: number } {
  let ids: { uid: number; gid: number } | undefined;
  const numeric = /^(\d{1,10}):(\d{1,10})$/.exec(spec);
  if (numeric) ids = { uid: Number(numeric[1]), gid: Number(numeric[2]) };
  else {
    if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(spec)) throw new UsageError(`--chroot-user "${spec}" is not a user name`);
    let text = '';
    try {
      text = readFileSync(join(root, 'etc/passwd'), 'utf8');
    } catch {
      // reported below
    }
    for (const line of text.split('\n')) {
      const [name, , uid, gid] = line.split(':');
      if (name === spec && uid !== undefined && gid !== undefined) ids = { uid: Number(uid), gid: Number(gid) };
    }
    if (!ids) throw new UsageError(`--chroot-user "${spec}" is not in ${join(root, 'etc/passwd')}`);
  }
  if (ids.uid === 0) {
    throw new UsageError('--chroot-user must be an unprivileged user (a run may ask for root with BUILDER_ROOT=1)');
  }
  return ids;
}

/** `2G`, `1.5G`, `512M`, `64m`, `1048576`. */
export function bytes(text: string): number {
  const n = parseSize(text);
  if (n === null || n < 4 * 2 ** 20) {
    throw new UsageError(`--memory-limit must be a size of at least 4M, e.g. 2G or 512M (got "${text}")`);
  }
  return n;
}

function integer(value: number | string, flag: string, min: number, max: number): number {
  const n = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be an integer from ${min} to ${max} (got "${value}")`);
  }
  return n;
}
