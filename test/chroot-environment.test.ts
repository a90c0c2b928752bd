/**
 * The environment on record for the chroot executor, through real builder-server, builder-worker
 * and builder-client processes: two copies of the test base, one with a package's version changed
 * in its dpkg status (no package installed for real), one worker on each, one job building on
 * both; the run pages show each base, and compare names the one package. Needs root (the chroot
 * sandbox) and the test rootfs (packages/worker/src/test-support/chroot-root.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chrootSkipReason,
  ensureRootfs,
  copyRootfs,
  ROOTFS_TIMEOUT_MS,
  TEST_ID_RANGE,
} from '../packages/worker/src/test-support/chroot-root.ts';
import { Cluster } from './harness.ts';

const skip = chrootSkipReason();
if (skip) console.warn(`chroot environment test skipped: ${skip}`);

describe.skipIf(skip !== undefined)('the environment on record (chroot executor, as root)', () => {
  let c: Cluster;
  let version = '';
  beforeAll(async () => {
    await ensureRootfs();
    c = await Cluster.start();
    const a = join(c.dir, 'base-a');
    const b = join(c.dir, 'base-b');
    copyRootfs(a);
    copyRootfs(b);
    const statusFile = join(b, 'var/lib/dpkg/status');
    const status = readFileSync(statusFile, 'utf8');
    const stanza = /^Package: base-files\n(?:.+\n)*?Version: (.+)\n/m.exec(status);
    if (!stanza?.[1]) throw new Error('no base-files in the test base');
    version = stanza[1];
    writeFileSync(
      statusFile,
      status.replace(stanza[0], stanza[0].replace(`Version: ${version}`, `Version: ${version}+local1`)),
    );
    for (const [name, root, platform] of [
      ['wa', a, 'deb-a'],
      ['wb', b, 'deb-b'],
    ] as const) {
      c.startWorker(name, { platform, args: ['--executor', 'chroot', '--root', root, '--id-range', TEST_ID_RANGE] });
    }
    await c.waitForWorkers('wa', 'wb');
    const script = c.script('env.sh', 'echo built > "$BUILDER_OUTPUT/out.txt"\n');
    const r = await c.client(['schedule', 'env', '--platform', 'deb-a', '--platform', 'deb-b', '--script', script]);
    expect(r.code, r.stderr).toBe(0);
  }, ROOTFS_TIMEOUT_MS);
  afterAll(async () => {
    await c?.stop();
  });

  it('records each base (suite, dates, packages) and compare names the package that differs', async () => {
    const r = await c.client(['execute', 'env', '--follow'], { timeoutMs: 120_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const page = async (n: number) => {
      const res = await fetch(`${c.url}/api/job/env/run/${n}`);
      return (await res.json()) as {
        run: { platform: string };
        environment: {
          worker: string;
          executor: string;
          base: {
            path: string;
            suite: string;
            created: string;
            packagesSha256: string;
            packages: { name: string; version: string }[];
          };
        };
      };
    };
    const runs = [await page(1), await page(2)];
    const onA = runs.find((p) => p.run.platform === 'deb-a')!;
    const onB = runs.find((p) => p.run.platform === 'deb-b')!;
    expect(onA.environment).toMatchObject({ worker: 'wa', executor: 'chroot' });
    expect(onA.environment.base).toMatchObject({ path: join(c.dir, 'base-a'), suite: 'bookworm' });
    expect(onA.environment.base.created).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(onA.environment.base.packages.find((p) => p.name === 'base-files')?.version).toBe(version);
    expect(onB.environment.base.packages.find((p) => p.name === 'base-files')?.version).toBe(`${version}+local1`);
    expect(onA.environment.base.packages.length).toBeGreaterThan(50);
    expect(onB.environment.base.packagesSha256).not.toBe(onA.environment.base.packagesSha256);

    const n = (p: typeof onA) => (p === runs[0] ? 1 : 2);
    const html = await (await fetch(`${c.url}/job/env/run/${n(onA)}`, { headers: { accept: 'text/html' } })).text();
    expect(html).toContain('wa (chroot executor)');
    expect(html).toMatch(/<details id="packages">\s*<summary>\d+ packages in the base<\/summary>/);
    expect(html).toContain(`base-files ${version} `);

    const cmp = await c.client(['compare', 'env', String(n(onA)), String(n(onB))]);
    expect(cmp.code, cmp.stderr).toBe(0);
    expect(cmp.stdout).toContain('packages\n');
    expect(cmp.stdout).toMatch(
      new RegExp(
        `  changed  base-files \\(\\S+\\) ${version.replace(/[+.]/g, '\\$&')} → ${version.replace(/[+.]/g, '\\$&')}\\+local1\\n`,
      ),
    );
    expect(cmp.stdout).not.toMatch(/ {2}(added|removed) {3,}/);
    expect(cmp.stdout).toContain('reproducible (the same 1 file)');
    const json = JSON.parse((await c.client(['compare', 'env', String(n(onA)), String(n(onB)), '--json'])).stdout);
    expect(json.environment).toMatchObject({ known: true, same: false, added: [], removed: [] });
    expect(json.environment.changed).toEqual([
      { name: 'base-files', arch: expect.any(String), a: version, b: `${version}+local1` },
    ]);
  });
});
