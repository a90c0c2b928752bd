import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { packageListSha256, sortPackages, type BaseIdentity, type EnvPackage } from '@builder/protocol';

/** The installed packages in a dpkg status file (`Status: install ok installed` only). */
export function parseDpkgStatus(text: string): EnvPackage[] {
  const packages: EnvPackage[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string): string | undefined => {
      const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(stanza);
      return m?.[1]?.trim();
    };
    const name = field('Package');
    const status = field('Status');
    if (!name || !status || !/\binstalled$/.test(status) || /\bnot-installed$/.test(status)) continue;
    packages.push({ name, version: field('Version') ?? '', arch: field('Architecture') ?? '' });
  }
  return sortPackages(packages);
}

const RECORD = 'etc/builder-root.json';
const STATUS = 'var/lib/dpkg/status';

/**
 * What identifies the base's state cheaply: the package database and the base's record. A refresh
 * rewrites both (or swaps in a new directory: a new inode), so a cached description goes stale.
 */
export async function debianBaseStamp(root: string): Promise<string> {
  const parts: string[] = [root];
  for (const file of [STATUS, RECORD]) {
    const s = await stat(join(root, file)).catch(() => undefined);
    parts.push(s ? `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}` : '-');
  }
  return parts.join('|');
}

/** Suite, creation and refresh times (from debian/mkroot's record, when there is one) and the packages. */
export async function describeDebianBase(root: string): Promise<BaseIdentity> {
  const packages = parseDpkgStatus(await readFile(join(root, STATUS), 'utf8'));
  const record = await readRecord(join(root, RECORD));
  return {
    path: root,
    ...record,
    packagesSha256: packageListSha256(packages),
    packages,
  };
}

async function readRecord(file: string): Promise<Pick<BaseIdentity, 'suite' | 'created' | 'refreshed'>> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return {}; // a base made by hand has no record: its packages still say what it is
  }
  if (typeof raw !== 'object' || raw === null) return {};
  const r = raw as Record<string, unknown>;
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length <= 256 ? v : undefined);
  const out: Pick<BaseIdentity, 'suite' | 'created' | 'refreshed'> = {};
  const suite = str(r.suite);
  const created = str(r.created);
  const refreshed = str(r.refreshed);
  if (suite !== undefined) out.suite = suite;
  if (created !== undefined) out.created = created.slice(0, 64);
  if (refreshed !== undefined) out.refreshed = refreshed.slice(0, 64);
  return out;
}
