import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageListSha256, silentLogger } from '@builder/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { JailExecutor } from '../executors/jail.ts';
import { compileJailOptions } from '../executors/jail-options.ts';
import type { Executor } from '../executors/types.ts';
import { debianBaseStamp, describeDebianBase, parseDpkgStatus } from './dpkg.ts';
import { EnvironmentRecorder } from './recorder.ts';

const STATUS = `Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files

Package: zlib1g
Status: install ok installed
Priority: required
Architecture: amd64
Multi-Arch: same
Version: 1:1.2.13.dfsg-1

Package: removed-but-configured
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: apt
Status: install ok installed
Architecture: amd64
Version: 2.6.1
`;

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'builder-env-'));
  dirs.push(d);
  return d;
}

function debianBase(status = STATUS): string {
  const root = tmp();
  mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'var/lib/dpkg/status'), status);
  writeFileSync(
    join(root, 'etc/builder-root.json'),
    JSON.stringify({ suite: 'bookworm', mirror: 'http://deb.debian.org/debian', created: '2026-12-01T10:00:00Z' }),
  );
  return root;
}

/** A chroot-like executor over a base directory, counting how often the base is described. */
function chrootLike(root: string): { executor: Executor; described: () => number } {
  let n = 0;
  const executor: Executor = {
    name: 'chroot',
    cleanup: async () => undefined,
    run: async () => ({ kind: 'exited', code: 0 }),
    base: () => ({
      stamp: () => debianBaseStamp(root),
      describe: () => (n++, describeDebianBase(root)),
    }),
  };
  return { executor, described: () => n };
}

describe('the environment a worker reports', () => {
  it('reads installed packages from dpkg status, sorted, skipping removed ones', () => {
    expect(parseDpkgStatus(STATUS)).toEqual([
      { name: 'apt', version: '2.6.1', arch: 'amd64' },
      { name: 'base-files', version: '12.4+deb12u5', arch: 'amd64' },
      { name: 'zlib1g', version: '1:1.2.13.dfsg-1', arch: 'amd64' },
    ]);
  });

  it('describes a Debian base with its record and caches it until the package database changes', async () => {
    const root = debianBase();
    const { executor, described } = chrootLike(root);
    const rec = new EnvironmentRecorder({ worker: 'w1', executor, kernel: 'Linux 6.1.0 #1 x86_64' });
    const env = await rec.environment();
    expect(env).toMatchObject({ worker: 'w1', executor: 'chroot', kernel: 'Linux 6.1.0 #1 x86_64' });
    expect(env.base).toMatchObject({ path: root, suite: 'bookworm', created: '2026-12-01T10:00:00Z' });
    expect(env.base?.refreshed).toBeUndefined();
    expect(env.base?.packages.map((p) => p.name)).toEqual(['apt', 'base-files', 'zlib1g']);
    expect(env.base?.packagesSha256).toBe(packageListSha256(env.base!.packages));
    await rec.environment();
    expect(described()).toBe(1);

    // a refresh: new packages and a refreshed date in the record
    writeFileSync(join(root, 'var/lib/dpkg/status'), STATUS.replace('Version: 2.6.1', 'Version: 2.6.2'));
    const record = JSON.parse(readFileSync(join(root, 'etc/builder-root.json'), 'utf8'));
    writeFileSync(
      join(root, 'etc/builder-root.json'),
      JSON.stringify({ ...record, refreshed: '2026-12-07T09:00:00Z' }),
    );
    const after = await rec.environment();
    expect(described()).toBe(2);
    expect(after.base?.packages.find((p) => p.name === 'apt')?.version).toBe('2.6.2');
    expect(after.base?.refreshed).toBe('2026-12-07T09:00:00Z');
    expect(after.base?.packagesSha256).not.toBe(env.base?.packagesSha256);
  });

  it('a base without a package database is an error the next run tries again', async () => {
    const root = tmp();
    const { executor, described } = chrootLike(root);
    const rec = new EnvironmentRecorder({ worker: 'w1', executor });
    await expect(rec.environment()).rejects.toThrow(/var\/lib\/dpkg\/status/);
    await expect(rec.environment()).rejects.toThrow();
    expect(described()).toBe(2);
  });

  it('the host executor has no base', async () => {
    const executor: Executor = {
      name: 'host',
      cleanup: async () => undefined,
      run: async () => ({ kind: 'exited', code: 0 }),
    };
    const env = await new EnvironmentRecorder({ worker: 'h', executor }).environment();
    expect(env.base).toBeUndefined();
    expect(env.kernel.length).toBeGreaterThan(0);
  });

  it('a jail base: freebsd-version -u of the snapshot and pkg -r ROOT query, again when the snapshot changes', async () => {
    const dir = tmp();
    const bin = join(dir, 'bin');
    const mountpoint = join(dir, 'base');
    const snapRoot = join(mountpoint, '.zfs/snapshot/clean');
    mkdirSync(bin);
    mkdirSync(join(snapRoot, 'bin'), { recursive: true });
    writeFileSync(join(dir, 'guid'), '1111\n');
    const script = (body: string) => `#!/bin/sh\necho "$(basename "$0") $*" >> '${dir}/log'\n${body}\n`;
    // stand-ins for zfs(8), pkg(8) and the base's own freebsd-version(1), printing what the real ones print
    writeFileSync(
      join(bin, 'zfs'),
      script(`case "$5" in mountpoint) echo '${mountpoint}' ;; guid) cat '${dir}/guid' ;; esac`),
    );
    writeFileSync(
      join(bin, 'pkg'),
      script(
        `[ "$1" = -r ] && [ "$2" = '${snapRoot}' ] || exit 1\nprintf 'pkg\\t1.21.3\\tFreeBSD:14:amd64\\nca_root_nss\\t3.93\\tFreeBSD:14:*\\n'`,
      ),
    );
    writeFileSync(join(snapRoot, 'bin/freebsd-version'), script('echo 14.1-RELEASE-p3'));
    for (const f of [join(bin, 'zfs'), join(bin, 'pkg'), join(snapRoot, 'bin/freebsd-version')]) chmodSync(f, 0o755);

    const executor = new JailExecutor({
      workDir: join(dir, 'work'),
      platform: 'freebsd-14',
      log: silentLogger,
      env: { PATH: `${bin}:/usr/bin:/bin` },
      jail: compileJailOptions({ zfsSnapshot: 'zroot/builder/base@clean', root: join(dir, 'jails') }, 1),
    });
    const rec = new EnvironmentRecorder({ worker: 'bsd1', executor });
    const env = await rec.environment();
    expect(env.executor).toBe('jail');
    expect(env.base).toMatchObject({ path: 'zroot/builder/base@clean', os: '14.1-RELEASE-p3' });
    expect(env.base?.packages).toEqual([
      { name: 'ca_root_nss', version: '3.93', arch: 'FreeBSD:14:*' },
      { name: 'pkg', version: '1.21.3', arch: 'FreeBSD:14:amd64' },
    ]);
    const queries = () =>
      readFileSync(join(dir, 'log'), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('pkg '));
    expect(queries()).toEqual([`pkg -r ${snapRoot} query %n\t%v\t%q`]);
    await rec.environment();
    expect(queries()).toHaveLength(1);
    writeFileSync(join(dir, 'guid'), '2222\n'); // the snapshot was made again
    await rec.environment();
    expect(queries()).toHaveLength(2);
  });
});
