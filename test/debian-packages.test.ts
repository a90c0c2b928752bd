/**
 * Debian packages built as a Debian packager would, through real builder-server, builder-worker
 * (chroot executor), debian/mkroot, apt and Debian's archive:
 *
 * - `debian/mkroot --refresh` on a base while a job runs on it: the job keeps its base and
 *   finishes, the next job gets the refreshed one (with apt's indexes and `refreshed` in its record);
 * - the shipped `deb-from-git` template builds a Debian source package that this test makes (a git
 *   repository with debian/, native, debhelper-compat) served over file://: build dependencies in
 *   the prepare step (root, network) from the base's apt sources, the build as nobody without
 *   network; the .deb, .changes, .buildinfo and .build log come back as artifacts, the .deb is
 *   checked with dpkg-deb; the second run installs from the worker's package cache without
 *   downloading again.
 *
 * Needs root, bubblewrap, dpkg-deb, the test rootfs (packages/worker/src/test-support/chroot-root.ts)
 * and Debian's archive (the base's apt sources: deb.debian.org).
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { git } from '../packages/worker/src/test-support/git.ts';
import {
  chrootSkipReason,
  ensureRootfs,
  REPO,
  copyRootfs,
  ROOTFS_TIMEOUT_MS,
  TEST_ID_RANGE,
} from '../packages/worker/src/test-support/chroot-root.ts';
import { Cluster, waitFor } from './harness.ts';

const skip =
  chrootSkipReason() ??
  (spawnSync('sh', ['-c', 'command -v dpkg-deb']).status === 0 ? undefined : 'dpkg-deb is not installed');
if (skip) console.warn(`Debian package tests skipped: ${skip}`);

const MKROOT = join(REPO, 'debian/mkroot');
const BUILD_TIMEOUT_MS = 900_000;

/** A native Debian source package in a new git repository: `builder-hello`, one shell script. */
function sourcePackage(dir: string): string {
  mkdirSync(join(dir, 'debian/source'), { recursive: true });
  const files: Record<string, string> = {
    'builder-hello': '#!/bin/sh\necho "hello from builder"\n',
    'debian/control': `Source: builder-hello
Section: misc
Priority: optional
Maintainer: Builder Test <test@example.org>
Build-Depends: debhelper-compat (= 13)
Standards-Version: 4.6.2
Rules-Requires-Root: no

Package: builder-hello
Architecture: all
Depends: \${misc:Depends}
Description: greeting made by builder's tests
 A shell script that says hello.
`,
    'debian/changelog': `builder-hello (1.0) unstable; urgency=medium

  * Initial release.

 -- Builder Test <test@example.org>  Mon, 07 Dec 2026 12:00:00 +0000
`,
    'debian/rules': '#!/usr/bin/make -f\n%:\n\tdh $@\n',
    'debian/source/format': '3.0 (native)\n',
    'debian/builder-hello.install': 'builder-hello usr/bin\n',
    'debian/copyright': 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n',
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  execFileSync('chmod', ['755', join(dir, 'debian/rules'), join(dir, 'builder-hello')]);
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'builder-hello 1.0');
  return git(dir, 'rev-parse', 'HEAD');
}

/** The run directory of the one run the worker has (the test's own, never a guess among several). */
function runDir(work: string): string | undefined {
  const runs = existsSync(work) ? readdirSync(work).filter((e) => /^[0-9a-f-]{36}-\d+$/.test(e)) : [];
  return runs.length === 1 ? join(work, runs[0]!) : undefined;
}

describe.skipIf(skip !== undefined)('Debian packages on the chroot worker', () => {
  let c: Cluster;
  let tmp: string;
  let base: string;
  let work: string;

  beforeAll(async () => {
    await ensureRootfs();
    tmp = mkdtempSync(join(REPO, '.build', 'debian-packages-'));
    // a copy of the test rootfs: this test refreshes it
    base = join(tmp, 'roots', 'bookworm');
    mkdirSync(join(tmp, 'roots'));
    copyRootfs(base);
    c = await Cluster.start();
    work = join(c.dir, 'work-cw');
    c.startWorker('cw', { args: ['--executor', 'chroot', '--root', base, '--id-range', TEST_ID_RANGE] });
    await c.waitForWorkers('cw');
  }, ROOTFS_TIMEOUT_MS);

  afterAll(async () => {
    await c?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it(
    'refreshes a base while a job runs on it: the job keeps its base, the next job gets the new one',
    async () => {
      // which base a job sees: its record (rewritten by every refresh) by hash, and apt's indexes
      const show = `echo "$1: record $(md5sum < /etc/builder-root.json | cut -c1-12), indexes $(ls /var/lib/apt/lists | grep -c '_Packages$')"`;
      const recordHash = (path: string) => createHash('md5').update(readFileSync(path)).digest('hex').slice(0, 12);
      const original = recordHash(join(base, 'etc/builder-root.json'));
      await c.schedule(
        'hold',
        `show() { ${show}; }
show before
touch /builder/work/waiting
while [ ! -e /builder/work/go ]; do sleep 0.1; done
show after
`,
      );
      expect((await c.client(['execute', 'hold'])).code).toBe(0);
      let dir: string | undefined;
      await waitFor(() => {
        dir = runDir(work);
        return dir !== undefined && existsSync(join(dir, 'builder/work/waiting'));
      }, 'the job to wait');

      // the job ends whatever happens here: it holds the worker's one slot
      try {
        const refresh = await promisify(execFile)(MKROOT, ['--refresh', base], { maxBuffer: 64 << 20 });
        expect(refresh.stdout).toMatch(/refreshed .*bookworm -> bookworm\.\d{8}T\d{6}Z/);
        // the base is now a link to the new directory; the old one is kept aside (the job uses it)
        expect(lstatSync(base).isSymbolicLink()).toBe(true);
        const record = JSON.parse(readFileSync(join(base, 'etc/builder-root.json'), 'utf8')) as Record<string, unknown>;
        expect(record).toMatchObject({ suite: 'bookworm', variant: 'minbase' });
        expect(record.refreshed).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        expect(record.created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        expect((record.dpkg as [string, string][]).some(([p]) => p === 'apt')).toBe(true);
        const generations = readdirSync(join(tmp, 'roots')).filter((n) => /^bookworm\.\d{8}T\d{6}Z/.test(n));
        expect(generations).toHaveLength(2);

        // a second refresh while the job still runs on the first base: that one stays
        const again = await promisify(execFile)(MKROOT, ['--refresh', base], { maxBuffer: 64 << 20 });
        expect(again.stdout).toContain('keeping older bases: a job that started before');
        expect(readdirSync(join(tmp, 'roots')).filter((n) => /^bookworm\.\d{8}T\d{6}Z/.test(n))).toHaveLength(3);
      } finally {
        writeFileSync(join(dir!, 'builder/work/go'), '');
      }
      await waitFor(async () => (await c.run('hold/1')).state === 'succeeded', 'hold/1 to succeed');
      const held = (await c.client(['observe', 'hold/1'])).stdout;
      // the same base before and after the refresh: the one the job started on
      expect(held).toContain(`before: record ${original},`);
      expect(held).toContain(`after: record ${original},`);

      await c.schedule('peek', `show() { ${show}; }\nshow next\n`);
      const next = await c.client(['execute', 'peek', '--follow']);
      expect(next.code, next.stdout).toBe(0);
      expect(next.stdout).toMatch(/next: record [0-9a-f]{12}, indexes [1-9]/);
      expect(next.stdout).toContain(`next: record ${recordHash(join(base, 'etc/builder-root.json'))},`);
      expect(next.stdout).not.toContain(`next: record ${original},`);
      // once no job uses them, a refresh removes the bases before the one it replaces
      const third = await promisify(execFile)(MKROOT, ['--refresh', base], { maxBuffer: 64 << 20 });
      expect(third.stdout.match(/: removed \S*\/bookworm\.\d{8}T\d{6}Z/g)).toHaveLength(2);
      expect(readdirSync(join(tmp, 'roots')).filter((n) => /^bookworm\.\d{8}T\d{6}Z/.test(n))).toHaveLength(2);
    },
    BUILD_TIMEOUT_MS,
  );

  it(
    'builds a source package with deb-from-git; the second run installs from the package cache',
    async () => {
      const src = join(tmp, 'builder-hello');
      mkdirSync(src);
      const commit = sourcePackage(src);
      const s = await c.client([
        'schedule',
        'hello-deb',
        '--platform',
        'debian-12',
        '--template',
        'deb-from-git',
        '--source-git',
        `file://${src}`,
      ]);
      expect(s.code, s.stderr).toBe(0);

      const first = await c.client(['execute', 'hello-deb', '--follow'], { timeoutMs: BUILD_TIMEOUT_MS });
      expect(first.code, first.stdout.slice(-4000) + first.stderr).toBe(0);
      expect(first.stdout).toContain(`==> source: HEAD at ${commit}`);
      expect(first.stdout).toContain('[builder] build step: as uid 65534, without network');
      expect(first.stdout).toMatch(/^Get:\d+ http:\/\/deb\.debian\.org\/debian bookworm\/main amd64 debhelper /m);
      expect(first.stdout).toMatch(/\[builder\] package cache: \d+ new \.deb\(s\) kept for the next jobs/);
      const cached = readdirSync(join(work, 'apt-cache'));
      expect(cached.some((f) => /^debhelper_.*_all\.deb$/.test(f))).toBe(true);

      const out = join(tmp, 'download');
      const dl = await c.client(['artifacts', 'hello-deb/1', '--download', out]);
      expect(dl.code, dl.stderr).toBe(0);
      const files = readdirSync(out).sort();
      const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
      expect(files).toEqual(
        [
          'builder-hello_1.0_all.deb',
          `builder-hello_1.0_${arch}.build`,
          `builder-hello_1.0_${arch}.buildinfo`,
          `builder-hello_1.0_${arch}.changes`,
        ].sort(),
      );
      const deb = join(out, 'builder-hello_1.0_all.deb');
      expect(execFileSync('dpkg-deb', ['-f', deb, 'Package', 'Version', 'Architecture'], { encoding: 'utf8' })).toBe(
        'Package: builder-hello\nVersion: 1.0\nArchitecture: all\n',
      );
      expect(execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' })).toMatch(
        /^-rwxr-xr-x root\/root .* \.\/usr\/bin\/builder-hello$/m,
      );
      expect(readFileSync(join(out, `builder-hello_1.0_${arch}.build`), 'utf8')).toContain('dh binary');
      expect(readFileSync(join(out, `builder-hello_1.0_${arch}.changes`), 'utf8')).toContain(
        'builder-hello_1.0_all.deb',
      );

      // the same build again: everything apt needs is in the worker's package cache
      const second = await c.client(['execute', 'hello-deb', '--follow'], { timeoutMs: BUILD_TIMEOUT_MS });
      expect(second.code, second.stdout.slice(-4000)).toBe(0);
      expect(second.stdout).toMatch(/\[builder\] prepare step: as root, with network \(package cache: [1-9]\d* \.deb/);
      expect(second.stdout).not.toMatch(/^Get:\d+ /m);
      expect(second.stdout.match(/^Need to get 0 B\/[\d.,]+ [kM]B of archives\.$/gm)).toHaveLength(2);
    },
    BUILD_TIMEOUT_MS,
  );

  it(
    'checks the package with lintian when the run asks for it (LINTIAN=1)',
    async () => {
      const r = await c.client(['execute', 'hello-deb', '--param', 'LINTIAN=1', '--follow'], {
        timeoutMs: BUILD_TIMEOUT_MS,
      });
      expect(r.code, r.stdout.slice(-4000)).toBe(0);
      expect(r.stdout).toContain('==> lintian');
      const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
      const list = await c.client(['artifacts', 'hello-deb/3']);
      expect(list.stdout).toContain(`builder-hello_1.0_${arch}.lintian`);
      expect(list.stdout).toContain('builder-hello_1.0_all.deb');
    },
    BUILD_TIMEOUT_MS,
  );
});
