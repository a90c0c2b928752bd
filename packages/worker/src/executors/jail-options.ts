import { isAbsolute, resolve } from 'node:path';
import { UsageError } from '../errors.ts';

/** The `--jail-*` flags as given (strings from argv). */
export interface JailOptionsInput {
  zfsSnapshot?: string | undefined;
  baseDir?: string | undefined;
  root?: string | undefined;
  ipRange?: string | undefined;
  user?: string | undefined;
  devfsRuleset?: number | string | undefined;
  interface?: string | undefined;
}

/** Where each job's root comes from: a ZFS clone of a snapshot, or a copy of a directory. */
export type JailBase =
  | { readonly kind: 'zfs'; readonly snapshot: string; readonly dataset: string; readonly parent: string }
  | { readonly kind: 'copy'; readonly dir: string };

export interface JailOptions {
  readonly base: JailBase;
  /** Each jail's root is `<root>/<jail name>`. */
  readonly root: string;
  /** IPv4 addresses as numbers, inclusive; each running job holds one. */
  readonly ipFirst: number;
  readonly ipLast: number;
  readonly user: string;
  readonly devfsRuleset: number;
  /** Set: the worker adds each job's address as an alias on it and removes it after. */
  readonly interface: string | undefined;
}

export const JAIL_DEFAULTS = {
  root: '/usr/local/builder/jails',
  ipRange: '127.0.2.10-127.0.2.250',
  user: 'builder',
  /** devfsrules_jail in /etc/defaults/devfs.rules */
  devfsRuleset: 4,
} as const;

/** Dataset and snapshot names: what zfs(8) accepts, minus anything a shell or jail.conf would trip on. */
const ZFS_SNAPSHOT = /^[A-Za-z0-9][A-Za-z0-9_.:-]*(\/[A-Za-z0-9_.:-]+)+@[A-Za-z0-9_.:-]+$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const INTERFACE = /^[a-z][a-z0-9]{0,14}$/;

export function compileJailOptions(input: JailOptionsInput, capacity: number): JailOptions {
  const base = compileBase(input);
  const root = absolute(input.root ?? JAIL_DEFAULTS.root, '--jail-root');
  const [ipFirst, ipLast] = ipRange(input.ipRange ?? JAIL_DEFAULTS.ipRange);
  const size = ipLast - ipFirst + 1;
  if (capacity > size) {
    throw new UsageError(
      `--jail-ip-range holds ${size} address(es) but --capacity is ${capacity}: every job needs one`,
    );
  }
  const user = input.user ?? JAIL_DEFAULTS.user;
  if (!USER.test(user)) throw new UsageError(`--jail-user "${user}" is not a user name`);
  if (user === 'root') throw new UsageError('--jail-user must be an unprivileged user, not root');
  const ruleset = input.devfsRuleset ?? JAIL_DEFAULTS.devfsRuleset;
  const devfsRuleset = typeof ruleset === 'number' ? ruleset : /^\d{1,5}$/.test(ruleset) ? Number(ruleset) : NaN;
  if (!Number.isInteger(devfsRuleset) || devfsRuleset < 1 || devfsRuleset > 65535) {
    // ruleset 0 means "no rules": every device of the host visible in the jail
    throw new UsageError(`--jail-devfs-ruleset must be a ruleset number from 1 to 65535 (got "${ruleset}")`);
  }
  const iface = input.interface;
  if (iface !== undefined && !INTERFACE.test(iface)) {
    throw new UsageError(`--jail-interface "${iface}" is not an interface name, e.g. lo1`);
  }
  return { base, root, ipFirst, ipLast, user, devfsRuleset, interface: iface };
}

function compileBase(input: JailOptionsInput): JailBase {
  const { zfsSnapshot, baseDir } = input;
  if ((zfsSnapshot === undefined) === (baseDir === undefined)) {
    throw new UsageError(
      '--executor jail needs exactly one of --jail-zfs-snapshot POOL/DATASET@SNAP (a clone per job) or --jail-base-dir DIR (a copy per job)',
    );
  }
  if (baseDir !== undefined) return { kind: 'copy', dir: absolute(baseDir, '--jail-base-dir') };
  const snapshot = zfsSnapshot as string;
  if (!ZFS_SNAPSHOT.test(snapshot)) {
    throw new UsageError(
      `--jail-zfs-snapshot "${snapshot}" is not a snapshot of a child dataset, e.g. zroot/builder/base@clean`,
    );
  }
  const dataset = snapshot.slice(0, snapshot.indexOf('@'));
  // Clones are siblings of the base dataset: zroot/builder/base@clean → zroot/builder/builder-…
  return { kind: 'zfs', snapshot, dataset, parent: dataset.slice(0, dataset.lastIndexOf('/')) };
}

function absolute(path: string, flag: string): string {
  if (!isAbsolute(path)) throw new UsageError(`${flag} must be an absolute path (got "${path}")`);
  const resolved = resolve(path);
  if (resolved === '/') throw new UsageError(`${flag} must not be /`);
  return resolved;
}

function ipRange(text: string): [number, number] {
  const parts = text.split('-');
  const first = parts.length === 2 ? ipv4(parts[0] as string) : undefined;
  const last = parts.length === 2 ? ipv4(parts[1] as string) : undefined;
  if (first === undefined || last === undefined || last < first) {
    throw new UsageError(
      `--jail-ip-range must be FIRST-LAST IPv4 addresses, e.g. 127.0.2.10-127.0.2.250 (got "${text}")`,
    );
  }
  return [first, last];
}

export function ipv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text.trim());
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return octets.reduce((n, o) => n * 256 + o, 0);
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
