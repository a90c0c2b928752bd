/**
 * Package repositories through the real server, a host worker and the CLI: jobs build .deb files
 * with dpkg-deb, a repository made of those jobs publishes signed apt indices. The indices are read
 * against `dpkg-deb -f` of each file, the signatures checked with gpgv, an invalid .deb kept out;
 * then (as root) the real apt of the chroot tests' Debian base, in an overlay of it, adds the
 * repository with its key, installs, upgrades, and refuses a tampered Packages and a wrong key.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chrootSkipReason,
  ensureRootfs,
  ROOTFS,
  ROOTFS_TIMEOUT_MS,
} from '../packages/worker/src/test-support/chroot-root.ts';
import { Cluster, waitFor } from './harness.ts';

const missing = ['dpkg-deb', 'gpgv', 'xz', 'openssl'].filter(
  (c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0,
);
const skip =
  missing.length > 0
    ? `${missing.join(' and ')} not installed (apt-get install dpkg-dev gpgv xz-utils openssl)`
    : undefined;
if (skip) console.warn(`repository tests skipped: ${skip}`);
const aptSkip =
  skip ??
  (process.getuid?.() === 0 ? undefined : 'needs root (chroot, mount)') ??
  chrootSkipReason() ??
  (spawnSync('sh', ['-c', 'command -v gpg']).status === 0 ? undefined : 'gpg is not installed (apt-get install gpg)');
if (aptSkip && !skip) console.warn(`apt-in-a-chroot test skipped: ${aptSkip}`);

const CHROMIUM = '/usr/bin/chromium';
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const ARCH = spawnSync('sh', ['-c', 'dpkg --print-architecture']).stdout?.toString().trim() || 'amd64';

/** A job that builds builder-hello $VERSION with dpkg-deb, and leaves a file named .deb that is not one. */
const BUILD = `set -eu
v="\${VERSION:-1.0}"
mkdir -p pkg/DEBIAN pkg/usr/bin
printf '#!/bin/sh\\necho hello %s\\n' "$v" >pkg/usr/bin/builder-hello
chmod 755 pkg/usr/bin/builder-hello
cat >pkg/DEBIAN/control <<EOF
Package: builder-hello
Version: $v
Architecture: ${ARCH}
Maintainer: builder tests <tests@example.org>
Section: misc
Priority: optional
Description: a package built by a builder job
 Built in a test, installed by apt from builder's own repository.
EOF
dpkg-deb --root-owner-group -Zgzip --build pkg "$BUILDER_OUTPUT/builder-hello_\${v}_${ARCH}.deb" >/dev/null
echo 'this is no package' >"$BUILDER_OUTPUT/broken_1.0_all.deb"
# a FreeBSD package's manifest, as pkg create writes it (the same repository carries .pkg files)
mkdir -p fbsd
printf '{"name":"hello","origin":"misc/hello","version":"%s","comment":"says hello","maintainer":"tests@example.org","www":"https://example.org","abi":"FreeBSD:14:amd64","arch":"freebsd:14:x86:64","prefix":"/usr/local","flatsize":10,"desc":"test"}' "$v" >fbsd/+COMPACT_MANIFEST
cp fbsd/+COMPACT_MANIFEST fbsd/+MANIFEST
tar -C fbsd -cJf "$BUILDER_OUTPUT/hello-$v.pkg" +COMPACT_MANIFEST +MANIFEST
`;

async function get(url: string): Promise<{ status: number; body: Buffer; type: string }> {
  let r: Response;
  try {
    r = await fetch(url);
  } catch (err) {
    // a kept-alive connection the server closed as it idled (the base can take minutes to make):
    // a GET is asked again, as any HTTP client does
    if ((err as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw err;
    r = await fetch(url);
  }
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()), type: r.headers.get('content-type') ?? '' };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Packages paragraphs as field maps. */
function paragraphs(text: string): Map<string, string>[] {
  return text
    .trim()
    .split(/\n\n+/)
    .filter(Boolean)
    .map((p) => {
      const m = new Map<string, string>();
      let last = '';
      for (const line of p.split('\n')) {
        if (/^\s/.test(line)) m.set(last, `${m.get(last)}\n${line}`);
        else {
          const i = line.indexOf(':');
          last = line.slice(0, i);
          m.set(last, line.slice(i + 1).trim());
        }
      }
      return m;
    });
}

describe.skipIf(skip)('package repositories', () => {
  let c: Cluster;
  let work: string;
  const repoUrl = () => `${c.url}/repo/main-repo`;

  async function build(version: string): Promise<void> {
    const r = await c.client(['execute', 'hello', '--param', `VERSION=${version}`, '--follow'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr + r.stdout).toBe(0);
  }

  /** Wait until the repository lists `version` of builder-hello. */
  async function published(version: string): Promise<void> {
    await waitFor(async () => {
      const r = await c.client(['repo', 'show', 'main-repo', '--json']);
      const v = JSON.parse(r.stdout) as { packages: { name: string; version: string }[] };
      return v.packages.some((p) => p.name === 'builder-hello' && p.version === version);
    }, `builder-hello ${version} in the repository`);
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'builder-repo-'));
    c = await Cluster.start();
    c.startWorker('w1');
    await c.waitForWorkers('w1');
    await c.schedule('hello', BUILD);
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('refuses a repository of an unknown job or platform, saying which', async () => {
    const r = await c.client(['repo', 'create', 'x', '--suite', 'bookworm', '--job', 'nope']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('no job named "nope"');
    const p = await c.client(['repo', 'create', 'x', '--suite', 'bookworm', '--job', 'hello:freebsd-14']);
    expect(p.code).toBe(2);
    expect(p.stderr).toContain('does not build for platform freebsd-14');
    const s = await c.client(['repo', 'create', 'x', '--suite', 'Bad Suite', '--job', 'hello']);
    expect(s.code).toBe(2);
  });

  it('publishes signed indices of the jobs’ .deb files, read from their control files', async () => {
    await build('1.0');
    const created = await c.client(['repo', 'create', 'main-repo', '--suite', 'bookworm', '--job', 'hello:debian-12']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain(`deb [signed-by=/etc/apt/keyrings/builder.gpg] ${repoUrl()} bookworm main`);
    await published('1.0');

    const key = await get(`${c.url}/repo/key.gpg`);
    expect(key.status).toBe(200);
    writeFileSync(join(work, 'key.gpg'), key.body);
    const inRelease = await get(`${repoUrl()}/dists/bookworm/InRelease`);
    const release = await get(`${repoUrl()}/dists/bookworm/Release`);
    const releaseGpg = await get(`${repoUrl()}/dists/bookworm/Release.gpg`);
    expect([inRelease.status, release.status, releaseGpg.status]).toEqual([200, 200, 200]);
    writeFileSync(join(work, 'InRelease'), inRelease.body);
    writeFileSync(join(work, 'Release'), release.body);
    writeFileSync(join(work, 'Release.gpg'), releaseGpg.body);
    // gpgv, as apt runs it: the cleartext and the detached signature, with the served key only
    const clear = spawnSync('gpgv', ['--keyring', join(work, 'key.gpg'), join(work, 'InRelease')]);
    expect(clear.status, clear.stderr.toString()).toBe(0);
    const detached = spawnSync('gpgv', [
      '--keyring',
      join(work, 'key.gpg'),
      join(work, 'Release.gpg'),
      join(work, 'Release'),
    ]);
    expect(detached.status, detached.stderr.toString()).toBe(0);
    // a changed byte is refused
    writeFileSync(join(work, 'Release'), release.body.toString().replace('Suite: bookworm', 'Suite: bookwork'));
    expect(
      spawnSync('gpgv', ['--keyring', join(work, 'key.gpg'), join(work, 'Release.gpg'), join(work, 'Release')]).status,
    ).not.toBe(0);

    const releaseText = release.body.toString();
    expect(releaseText).toContain('Acquire-By-Hash: yes');
    expect(releaseText).toContain(`Architectures: ${ARCH}`);
    const packagesPath = `main/binary-${ARCH}/Packages`;
    const packages = await get(`${repoUrl()}/dists/bookworm/${packagesPath}`);
    expect(packages.status).toBe(200);
    // the Release's hash of Packages is the served file's, and by-hash serves the same bytes
    expect(releaseText).toMatch(new RegExp(` ${sha256(packages.body)} +${packages.body.length} ${packagesPath}\n`));
    const byHash = await get(`${repoUrl()}/dists/bookworm/main/binary-${ARCH}/by-hash/SHA256/${sha256(packages.body)}`);
    expect(byHash.body.equals(packages.body)).toBe(true);
    for (const ext of ['gz', 'xz']) {
      const z = await get(`${repoUrl()}/dists/bookworm/${packagesPath}.${ext}`);
      writeFileSync(join(work, `Packages.${ext}`), z.body);
      const unpacked = execFileSync(ext === 'gz' ? 'gzip' : 'xz', ['-dc', join(work, `Packages.${ext}`)]);
      expect(unpacked.equals(packages.body)).toBe(true);
    }

    // each paragraph against dpkg-deb -f of the file it points at
    const paras = paragraphs(packages.body.toString());
    expect(paras.map((p) => `${p.get('Package')} ${p.get('Version')}`)).toEqual(['builder-hello 1.0']);
    for (const p of paras) {
      const deb = await get(`${repoUrl()}/${p.get('Filename')}`);
      expect(deb.status).toBe(200);
      expect(String(deb.body.length)).toBe(p.get('Size'));
      expect(sha256(deb.body)).toBe(p.get('SHA256'));
      const file = join(work, 'p.deb');
      writeFileSync(file, deb.body);
      for (const f of ['Package', 'Version', 'Architecture', 'Maintainer', 'Section', 'Priority', 'Description']) {
        expect(p.get(f), f).toBe(execFileSync('dpkg-deb', ['-f', file, f]).toString().replace(/\n$/, ''));
      }
    }

    // the invalid one: named on the page and by the CLI, in no index, not served
    const show = await c.client(['repo', 'show', 'main-repo']);
    expect(show.stdout).toMatch(/refused hello#1 broken_1\.0_all\.deb: not a Debian package: no ar archive signature/);
    expect(packages.body.toString()).not.toContain('broken');
    expect((await get(`${repoUrl()}/pool/main/b/broken/broken_1.0_all.deb`)).status).toBe(404);
    const page = await get(`${c.url}/repo/main-repo`);
    expect(page.status).toBe(200);
    const pageText = page.body.toString();
    expect(pageText).toContain(`deb [signed-by=/etc/apt/keyrings/builder.gpg] ${repoUrl()} bookworm main`);
    expect(pageText).toContain(`URIs: ${repoUrl()}`);
    expect(pageText).toContain('-----BEGIN PGP PUBLIC KEY BLOCK-----');
    expect(pageText).toContain('href="/job/hello/run/1"');
    expect(pageText).toContain('href="/job/hello/run/1/provenance.json"');
    expect(pageText).toContain('broken_1.0_all.deb');
    const json = JSON.parse((await get(`${c.url}/api/repo/main-repo`)).body.toString()) as {
      packages: { name: string; version: string; run: string }[];
      refused: { path: string }[];
    };
    expect(json.packages.map((p) => [p.name, p.version, p.run])).toEqual([
      ['hello', '1.0', '/job/hello/run/1'],
      ['builder-hello', '1.0', '/job/hello/run/1'],
    ]);
    expect(json.refused.map((r) => r.path)).toEqual(['broken_1.0_all.deb']);
    expect((await c.client(['repo', 'list'])).stdout).toContain('main-repo\tbookworm\thello:debian-12\t2 packages');

    // the FreeBSD side: meta.conf, a signed packagesite.pkg, the package under All/ from the blob
    const abi = `${repoUrl()}/pkg/FreeBSD:14:amd64`;
    const meta = await get(`${abi}/meta.conf`);
    expect(meta.status).toBe(200);
    expect(meta.body.toString()).toContain('manifests = "packagesite.yaml";');
    const site = await get(`${abi}/packagesite.pkg`);
    writeFileSync(join(work, 'packagesite.pkg'), site.body);
    const unpack = join(work, 'site');
    mkdirSync(unpack);
    expect(
      execFileSync('tar', ['-xvJf', join(work, 'packagesite.pkg'), '-C', unpack])
        .toString()
        .split('\n'),
    ).toEqual(['signature', 'packagesite.yaml', '']);
    const line = JSON.parse(readFileSync(join(unpack, 'packagesite.yaml'), 'utf8')) as Record<string, unknown>;
    expect(line).toMatchObject({ name: 'hello', version: '1.0', origin: 'misc/hello', path: 'All/hello-1.0.pkg' });
    const pkg = await get(`${abi}/All/hello-1.0.pkg`);
    expect(pkg.status).toBe(200);
    expect(sha256(pkg.body)).toBe(line.sum);
    expect(pkg.body.length).toBe(line.pkgsize);
    writeFileSync(join(work, 'pkg-key.pem'), (await get(`${c.url}/repo/pkg-key.pem`)).body);
    const recovered = execFileSync('openssl', [
      'pkeyutl',
      '-verifyrecover',
      '-pubin',
      '-inkey',
      join(work, 'pkg-key.pem'),
      '-in',
      join(unpack, 'signature'),
    ]);
    expect(recovered.subarray(-64).toString()).toBe(sha256(readFileSync(join(unpack, 'packagesite.yaml'))));
  }, 90_000);

  it('keeps the last N versions; the indices survive a restart and are rebuilt when lost', async () => {
    // what a client that read the Release just before the next build goes on to fetch
    const oldPackages = await get(`${repoUrl()}/dists/bookworm/main/binary-${ARCH}/Packages`);
    await build('1.1');
    await published('1.1');
    const newPackages = await get(`${repoUrl()}/dists/bookworm/main/binary-${ARCH}/Packages`);
    expect(newPackages.body.equals(oldPackages.body)).toBe(false);
    const old = await get(`${repoUrl()}/dists/bookworm/main/binary-${ARCH}/by-hash/SHA256/${sha256(oldPackages.body)}`);
    expect(old.status).toBe(200);
    expect(old.body.equals(oldPackages.body)).toBe(true);
    await build('1.2');
    await published('1.2');
    await build('1.3');
    await published('1.3');
    const versions = async () =>
      (
        JSON.parse((await c.client(['repo', 'show', 'main-repo', '--json'])).stdout) as {
          packages: { kind: string; version: string }[];
        }
      ).packages
        .filter((p) => p.kind === 'deb')
        .map((p) => p.version)
        .sort();
    expect(await versions()).toEqual(['1.1', '1.2', '1.3']); // --keep 3 by default
    const before = (await get(`${repoUrl()}/dists/bookworm/InRelease`)).body;
    await c.killServer();
    await c.startServer();
    expect((await get(`${repoUrl()}/dists/bookworm/InRelease`)).body.equals(before)).toBe(true);
    // the index files are gone: the restarted server writes them again from the database
    await c.killServer();
    const files = join(c.dataDir, 'repos', 'files');
    for (const f of readdirSync(files)) rmSync(join(files, f));
    await c.startServer();
    await waitFor(async () => (await get(`${repoUrl()}/dists/bookworm/InRelease`)).status === 200, 'indices rebuilt');
    const packages = await get(`${repoUrl()}/dists/bookworm/main/binary-${ARCH}/Packages`);
    expect(
      paragraphs(packages.body.toString())
        .map((p) => p.get('Version'))
        .sort(),
    ).toEqual(['1.1', '1.2', '1.3']);
    await c.waitForWorkers('w1');
  }, 120_000);

  it.skipIf(!existsSync(CHROMIUM))(
    'the repository pages in chromium: no CSP violation, no serious axe finding',
    async () => {
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
      try {
        const context = await browser.newContext();
        await context.addInitScript(() => {
          const w = window as unknown as { __csp: string[] };
          w.__csp = [];
          document.addEventListener('securitypolicyviolation', (e) =>
            w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`),
          );
        });
        const page = await context.newPage();
        for (const path of ['/repos', '/repo/main-repo']) {
          await page.goto(`${c.url}${path}`);
          await page.evaluate(AXE);
          const found = await page.evaluate(async () => {
            const axe = (
              window as unknown as {
                axe: { run(o: object): Promise<{ violations: { id: string; impact: string }[] }> };
              }
            ).axe;
            const r = await axe.run({ runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
            return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id);
          });
          expect(found, path).toEqual([]);
          expect(await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp), path).toEqual([]);
        }
        expect(await page.locator('h2#packages-heading').count()).toBe(1);
        expect(await page.locator('a[href^="/job/hello/run/"][href$="/provenance.json"]').count()).toBeGreaterThan(0);
      } finally {
        await browser.close();
      }
    },
    60_000,
  );

  describe.skipIf(aptSkip)('the real apt of a Debian base, through chroot', () => {
    let root = '';
    let overlay = '';
    const mounts: string[] = [];
    const apt = (...args: string[]) =>
      spawnSync('chroot', [root, 'apt-get', '-o', 'APT::Sandbox::User=root', '-o', 'Debug::NoLocking=1', ...args], {
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' },
        timeout: 120_000,
      });
    const out = (r: ReturnType<typeof apt>) => r.stdout.toString() + r.stderr.toString();

    beforeAll(async () => {
      await ensureRootfs();
      // an overlay over the shared base: apt writes its lists and dpkg its database into the upper dir only
      overlay = mkdtempSync(join(tmpdir(), 'builder-apt-'));
      root = join(overlay, 'root');
      for (const d of ['upper', 'work', 'root']) mkdirSync(join(overlay, d));
      const mounted = spawnSync('mount', [
        '-t',
        'overlay',
        'overlay',
        '-o',
        `lowerdir=${ROOTFS},upperdir=${join(overlay, 'upper')},workdir=${join(overlay, 'work')}`,
        root,
      ]);
      if (mounted.status === 0) mounts.push(root);
      else execFileSync('cp', ['-a', `${ROOTFS}/.`, root]); // no overlayfs here: a copy
      execFileSync('mount', ['-t', 'proc', 'proc', join(root, 'proc')]);
      mounts.push(join(root, 'proc'));
      execFileSync('mount', ['--bind', '/dev', join(root, 'dev')]);
      mounts.push(join(root, 'dev'));
      // only our repository: nothing leaves loopback
      writeFileSync(join(root, 'etc/apt/sources.list'), '');
      rmSync(join(root, 'etc/apt/sources.list.d'), { recursive: true, force: true });
      mkdirSync(join(root, 'etc/apt/sources.list.d'));
      mkdirSync(join(root, 'etc/apt/keyrings'), { recursive: true });
      writeFileSync(join(root, 'etc/apt/keyrings/builder.gpg'), readFileSync(join(work, 'key.gpg')));
      const page = JSON.parse((await get(`${c.url}/api/repo/main-repo`)).body.toString()) as { deb822: string };
      writeFileSync(join(root, 'etc/apt/sources.list.d/builder.sources'), page.deb822);
    }, ROOTFS_TIMEOUT_MS);
    afterAll(() => {
      for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
      if (!overlay) return;
      // never recurse into a mount still there (the bind of /dev above all): leave the dir instead
      const left = readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[1] ?? '')
        .filter((m) => m.startsWith(`${overlay}/`));
      if (left.length > 0) console.warn(`not removing ${overlay}: still mounted ${left.join(', ')}`);
      else rmSync(overlay, { recursive: true, force: true });
    });

    it('adds the repository with its key, installs, upgrades to a new build, refuses a tampered index and a wrong key', async () => {
      const update = apt('update');
      expect(update.status, out(update)).toBe(0);
      expect(out(update)).not.toMatch(/^(W|E):/m);
      const install = apt('install', '-y', 'builder-hello');
      expect(install.status, out(install)).toBe(0);
      expect(execFileSync('chroot', [root, 'builder-hello']).toString()).toBe('hello 1.3\n');

      await build('2.0');
      await published('2.0');
      expect(apt('update').status).toBe(0);
      const upgrade = apt('upgrade', '-y');
      expect(upgrade.status, out(upgrade)).toBe(0);
      expect(out(upgrade)).toMatch(/Unpacking builder-hello \(2\.0\) over \(1\.3\)/);
      expect(execFileSync('chroot', [root, 'builder-hello']).toString()).toBe('hello 2.0\n');
      // rolling back by pinning: the older versions are still there to install
      const policy = execFileSync('chroot', [root, 'apt-cache', 'policy', 'builder-hello']).toString();
      expect(policy).toMatch(/1\.2 500/);
      const downgrade = apt('install', '-y', '--allow-downgrades', 'builder-hello=1.2');
      expect(downgrade.status, out(downgrade)).toBe(0);
      expect(execFileSync('chroot', [root, 'builder-hello']).toString()).toBe('hello 1.2\n');

      // a Packages changed on the server: its hash no longer matches the signed Release
      const view = JSON.parse((await get(`${c.url}/api/repo/main-repo`)).body.toString()) as { generation: number };
      expect(view.generation).toBeGreaterThan(0);
      const packages = await get(`${repoUrl()}/dists/bookworm/main/binary-${ARCH}/Packages`);
      for (const ext of ['', '.gz', '.xz']) {
        const f = await get(`${repoUrl()}/dists/bookworm/main/binary-${ARCH}/Packages${ext}`);
        const stored = join(c.dataDir, 'repos', 'files', sha256(f.body));
        const bytes = readFileSync(stored);
        bytes[bytes.length - 2] ^= 0x20; // one bit of the last line
        writeFileSync(stored, bytes);
      }
      expect(packages.status).toBe(200);
      rmSync(join(root, 'var/lib/apt/lists'), { recursive: true, force: true });
      mkdirSync(join(root, 'var/lib/apt/lists/partial'), { recursive: true });
      const tampered = apt('update');
      expect(out(tampered)).toMatch(/Hash Sum mismatch|File has unexpected size|Hashes of expected file/);
      expect(out(tampered)).toMatch(/^(E|W):/m);

      // another key than the server's: the signature is refused
      writeFileSync(join(root, 'etc/apt/keyrings/builder.gpg'), wrongKey(work));
      const wrong = apt('update');
      expect(out(wrong)).toMatch(/NO_PUBKEY|not signed|The following signatures couldn't be verified/);
      expect(out(wrong)).toMatch(/is not signed|^(E|W):/m);
    }, 300_000);
  });
});

/** An OpenPGP public key of another signer, made with gpg in a throwaway home. */
function wrongKey(work: string): Buffer {
  const home = join(work, 'gnupg');
  if (!existsSync(home)) mkdirSync(home, { mode: 0o700 });
  execFileSync(
    'gpg',
    [
      '--homedir',
      home,
      '--batch',
      '--passphrase',
      '',
      '--quick-gen-key',
      'other <o@example.org>',
      'ed25519',
      'sign',
      'never',
    ],
    {
      stdio: 'ignore',
    },
  );
  return execFileSync('gpg', ['--homedir', home, '--export']);
}
