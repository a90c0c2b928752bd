import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { packageListSha256, sortPackages, type BaseIdentity, type EnvPackage } from '@builder/protocol';
import type { CommandRunner } from '../executors/jail-command.ts';
import type { JailBase } from '../executors/jail-options.ts';

/** `pkg query '%n\t%v\t%q'` output: name, version, ABI (FreeBSD:14:amd64) per line. */
export function parsePkgQuery(text: string): EnvPackage[] {
  const packages: EnvPackage[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [name, version = '', arch = ''] = line.split('\t');
    if (name) packages.push({ name, version, arch });
  }
  return sortPackages(packages);
}

/** The directory holding the base's files: the copy's directory, or the snapshot under the dataset's `.zfs`. */
export async function jailBaseRoot(run: CommandRunner, base: JailBase): Promise<string> {
  if (base.kind === 'copy') return base.dir;
  const mountpoint = (await run(['zfs', 'get', '-H', '-o', 'value', 'mountpoint', base.dataset])).trim();
  return join(mountpoint, '.zfs', 'snapshot', base.snapshot.slice(base.snapshot.indexOf('@') + 1));
}

/** A snapshot recreated under the same name gets a new guid; a copied base changes its package database. */
export async function jailBaseStamp(run: CommandRunner, base: JailBase): Promise<string> {
  if (base.kind === 'zfs') {
    return `${base.snapshot}|${(await run(['zfs', 'get', '-H', '-o', 'value', 'guid', base.snapshot])).trim()}`;
  }
  const parts = [base.dir];
  for (const file of ['var/db/pkg/local.sqlite', 'bin/freebsd-version']) {
    const s = await stat(join(base.dir, file)).catch(() => undefined);
    parts.push(s ? `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}` : '-');
  }
  return parts.join('|');
}

/** The base's userland version (its own `freebsd-version -u`) and its packages (`pkg -r ROOT query`). */
export async function describeJailBase(run: CommandRunner, base: JailBase): Promise<BaseIdentity> {
  const root = await jailBaseRoot(run, base);
  const os = (await run([join(root, 'bin/freebsd-version'), '-u'])).trim();
  const packages = parsePkgQuery(await run(['pkg', '-r', root, 'query', '%n\t%v\t%q']));
  return {
    path: base.kind === 'zfs' ? base.snapshot : base.dir,
    os: os.slice(0, 256),
    suite: os.slice(0, 256),
    packagesSha256: packageListSha256(packages),
    packages,
  };
}
