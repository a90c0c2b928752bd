/**
 * A package build in the chroot sandbox through real builder-server + builder-worker processes,
 * offline: a dependency .deb made on the host with dpkg-deb travels in the script, apt and dpkg
 * install it as root inside (the user namespace's root: the base and the run dir are owned by
 * the id range, so they work as on a real Debian), then the job builds a package as root and a
 * tarball as the unprivileged user, and both leave as artifacts. Needs root, bubblewrap, dpkg-deb
 * and the test rootfs (see packages/worker/src/test-support/chroot-root.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chrootSkipReason,
  ensureRootfs,
  ROOTFS,
  ROOTFS_TIMEOUT_MS,
  TEST_ID_RANGE,
} from '../packages/worker/src/test-support/chroot-root.ts';
import { Cluster } from './harness.ts';

const skip =
  chrootSkipReason() ??
  (spawnSync('sh', ['-c', 'command -v dpkg-deb']).status === 0 ? undefined : 'dpkg-deb is not installed');
if (skip) console.warn(`chroot package build test skipped: ${skip}`);

/** The dependency: a file and a command, no maintainer scripts, no dependencies of its own. */
function dependencyDeb(dir: string): Buffer {
  const pkg = join(dir, 'dep');
  mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
  mkdirSync(join(pkg, 'usr/bin'), { recursive: true });
  mkdirSync(join(pkg, 'usr/share/builder-test-dep'), { recursive: true });
  writeFileSync(
    join(pkg, 'DEBIAN/control'),
    'Package: builder-test-dep\nVersion: 1.0\nArchitecture: all\nMaintainer: builder <builder@example.org>\nDescription: test dependency\n',
  );
  writeFileSync(join(pkg, 'usr/share/builder-test-dep/greeting'), 'hello from the dependency\n');
  writeFileSync(join(pkg, 'usr/bin/builder-greet'), '#!/bin/sh\ncat /usr/share/builder-test-dep/greeting\n', {
    mode: 0o755,
  });
  execFileSync('dpkg-deb', ['--root-owner-group', '--build', pkg, join(dir, 'dep.deb')], { stdio: 'ignore' });
  return readFileSync(join(dir, 'dep.deb'));
}

const BUILD = (deb: Buffer) => `set -eu
base64 -d >/tmp/dep.deb <<'EOF'
${deb.toString('base64')}
EOF
# the build dependencies, as root, with apt (offline: a local .deb)
apt-get install -y -q /tmp/dep.deb >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; exit 1; }
dpkg -s builder-test-dep | grep '^Status:'
builder-greet
# the build as root: a package whose content comes from the dependency
mkdir -p pkg/DEBIAN pkg/usr/share/doc/hello
printf 'Package: hello\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: b <b@example.org>\\nDescription: test\\n' >pkg/DEBIAN/control
cp /usr/share/builder-test-dep/greeting pkg/usr/share/doc/hello/
dpkg-deb --root-owner-group --build pkg "$BUILDER_OUTPUT/hello_1.0_all.deb"
dpkg -i "$BUILDER_OUTPUT/hello_1.0_all.deb" >/dev/null && dpkg -s hello | grep '^Status:'
# and a step as the unprivileged user, as a build drops to for its tests
setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c 'cd /tmp && mkdir u && id -un >u/who && tar -cf u.tar u'
cp /tmp/u.tar "$BUILDER_OUTPUT/"
`;

describe.skipIf(skip !== undefined)('a package build in the chroot sandbox', () => {
  let c: Cluster;
  beforeAll(async () => {
    await ensureRootfs();
    c = await Cluster.start();
  }, ROOTFS_TIMEOUT_MS);
  afterAll(async () => {
    await c?.stop();
  });

  it('installs its dependencies as root with apt, builds as root and as nobody, leaves artifacts', async () => {
    c.startWorker('bw', {
      args: ['--executor', 'chroot', '--root', ROOTFS, '--id-range', TEST_ID_RANGE, '--memory-limit', '512M'],
    });
    await c.waitForWorkers('bw');
    await c.schedule('pkg', BUILD(dependencyDeb(c.dir)), ['--param', 'BUILDER_ROOT=1']);
    const r = await c.client(['execute', 'pkg', '--follow']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('Status: install ok installed\nhello from the dependency\n');
    expect(r.stdout.match(/Status: install ok installed/g)).toHaveLength(2);

    const dir = join(c.dir, 'download');
    expect((await c.client(['artifacts', 'pkg/1', '--download', dir])).code).toBe(0);
    const info = execFileSync('dpkg-deb', ['--contents', join(dir, 'hello_1.0_all.deb')], { encoding: 'utf8' });
    expect(info).toMatch(/root\/root .* \.\/usr\/share\/doc\/hello\/greeting/);
    const tar = execFileSync('tar', ['-xOf', join(dir, 'u.tar'), 'u/who'], { encoding: 'utf8' });
    expect(tar).toBe('nobody\n');
  }, 120_000);
});
