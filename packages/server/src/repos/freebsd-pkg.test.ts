import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { compressSync as xz } from '@napi-rs/lzma/xz';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decompress } from './decompress.ts';
import { NotAPackageError } from './deb.ts';
import { PKG_META_CONF, pkgCatalogue, readPkgManifest } from './freebsd-pkg.ts';
import { pkgRsaSign } from './signing.ts';
import { tarFiles } from './tar-files.ts';
import { tarOf } from './tar-write.ts';

/*
 * There is no FreeBSD here: these check the layout pkg(8) documents and its sources show
 * (libpkg/pkg_repo_create.c, pkgsign_ossl.c): meta.conf, packagesite.pkg = a tar of `signature`
 * and `packagesite.yaml` (one compact manifest per line with sum, pkgsize, path, repopath), data.pkg,
 * and the legacy RSA signature (PKCS#1 v1.5 over a SHA-1 DigestInfo holding the hex SHA-256).
 */

const MANIFEST = {
  name: 'hello',
  origin: 'misc/hello',
  version: '2.12_1',
  comment: 'says hello',
  maintainer: 'tests@example.org',
  www: 'https://example.org',
  abi: 'FreeBSD:14:amd64',
  arch: 'freebsd:14:x86:64',
  prefix: '/usr/local',
  flatsize: 1234,
  licenselogic: 'single',
  licenses: ['BSD2CLAUSE'],
  desc: 'A test package.',
  deps: {},
  categories: ['misc'],
};

function pkgFile(compress: (b: Buffer) => Buffer, manifest: object = MANIFEST): Buffer {
  const m = Buffer.from(JSON.stringify(manifest));
  return compress(
    tarOf(
      [
        { name: '+COMPACT_MANIFEST', data: m },
        {
          name: '+MANIFEST',
          data: Buffer.from(JSON.stringify({ ...manifest, files: { '/usr/local/bin/hello': '1$ab' } })),
        },
        { name: '/usr/local/bin/hello', data: Buffer.from('#!/bin/sh\necho hello\n') },
      ],
      0,
    ),
  );
}

describe('FreeBSD packages and their catalogue', () => {
  let dir: string;
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'pkg-test-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the compact manifest of a .pkg compressed with xz or gzip', () => {
    for (const compress of [(b: Buffer) => Buffer.from(xz(b)), (b: Buffer) => gzipSync(b)]) {
      const m = readPkgManifest(pkgFile(compress));
      expect([m.name, m.version, m.abi]).toEqual(['hello', '2.12_1', 'FreeBSD:14:amd64']);
      expect(m.manifest).toEqual(MANIFEST);
    }
  });

  it.skipIf(spawnSync('sh', ['-c', 'command -v zstd']).status !== 0)('and with zstd, as pkg 1.17+ makes them', () => {
    const zst = (b: Buffer) => execFileSync('zstd', ['-q', '-c'], { input: b });
    expect(readPkgManifest(pkgFile(zst)).name).toBe('hello');
  });

  it('refuses what is not a package, saying why', () => {
    const refused = (b: Buffer) => {
      try {
        readPkgManifest(b);
      } catch (err) {
        expect(err).toBeInstanceOf(NotAPackageError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refused(Buffer.from('no package'))).toMatch(/neither a tar nor/);
    expect(refused(pkgFile((b) => gzipSync(b), { ...MANIFEST, origin: undefined }))).toMatch(/lacks origin/);
    expect(refused(gzipSync(tarOf([{ name: 'x', data: Buffer.from('y') }], 0)))).toMatch(/no \+COMPACT_MANIFEST/);
    const ucl = gzipSync(tarOf([{ name: '+COMPACT_MANIFEST', data: Buffer.from('name = hello;') }], 0));
    expect(refused(ucl)).toMatch(/not JSON/);
  });

  it('lays out meta.conf, packagesite.pkg and data.pkg as pkg reads them', () => {
    const file = pkgFile((b) => Buffer.from(xz(b)));
    const sum = createHash('sha256').update(file).digest('hex');
    const files = pkgCatalogue(
      [{ manifest: MANIFEST, path: 'All/hello-2.12_1.pkg', sha256: sum, size: file.length }],
      (b) => pkgRsaSign(privatePem, b),
      Date.UTC(2026, 0, 1),
    );
    expect([...files.keys()].sort()).toEqual(['data.pkg', 'meta', 'meta.conf', 'packagesite.pkg']);
    const meta = files.get('meta.conf')!.toString();
    expect(meta).toBe(PKG_META_CONF);
    expect(meta).toMatch(/^version = 2;$/m);
    expect(meta).toMatch(/^packing_format = "txz";$/m);
    expect(meta).toMatch(/^manifests = "packagesite.yaml";$/m);
    expect(meta).toMatch(/^manifests_archive = "packagesite";$/m);

    // packagesite.pkg: an xz'd tar whose members are the signature, then the catalogue
    const site = files.get('packagesite.pkg')!;
    expect(site.subarray(0, 6)).toEqual(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
    const tar = decompress(site);
    const members = [...tarFiles(tar).keys()];
    expect(members).toEqual(['signature', 'packagesite.yaml']);
    // and the system tar reads it the same way (libarchive in pkg does)
    writeFileSync(join(dir, 'packagesite.pkg'), site);
    expect(
      execFileSync('tar', ['-tJf', join(dir, 'packagesite.pkg')])
        .toString()
        .trim()
        .split('\n'),
    ).toEqual(members);
    const yaml = tarFiles(tar).get('packagesite.yaml')!;
    const lines = yaml.toString().trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(entry).toEqual({
      ...MANIFEST,
      sum,
      pkgsize: file.length,
      path: 'All/hello-2.12_1.pkg',
      repopath: 'All/hello-2.12_1.pkg',
    });

    const data = tarFiles(decompress(files.get('data.pkg')!));
    expect([...data.keys()]).toEqual(['signature', 'data']);
    expect(JSON.parse(data.get('data')!.toString())).toEqual({ groups: [], expired_packages: [], packages: [entry] });

    // the signature, checked by openssl as pkg's RSA_verify(NID_sha1, hex SHA-256) does
    const sig = tarFiles(tar).get('signature')!;
    writeFileSync(join(dir, 'sig'), sig);
    writeFileSync(join(dir, 'pub.pem'), publicPem);
    const recovered = execFileSync('openssl', [
      'pkeyutl',
      '-verifyrecover',
      '-pubin',
      '-inkey',
      join(dir, 'pub.pem'),
      '-in',
      join(dir, 'sig'),
    ]);
    const asn1 = execFileSync('openssl', ['asn1parse', '-inform', 'DER'], { input: recovered }).toString();
    expect(asn1).toMatch(/OBJECT\s+:sha1/);
    const hex = createHash('sha256').update(yaml).digest('hex');
    // DigestInfo { sha1, NULL } with the 64 ASCII hex digits as the "digest"
    expect(recovered.toString('hex')).toBe(`304d300906052b0e03021a05000440${Buffer.from(hex).toString('hex')}`);
    expect(asn1).toMatch(/OCTET STRING/);
  });
});
