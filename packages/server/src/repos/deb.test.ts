import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packagesParagraph, poolPath } from './apt-index.ts';
import { NotAPackageError, parseControl, readDebControl } from './deb.ts';

const noDpkgDeb = spawnSync('sh', ['-c', 'command -v dpkg-deb']).status !== 0;

/** Stream the bytes in small pieces, as a blob store does, so headers straddle chunks. */
function chunks(b: Buffer, size = 97): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) parts.push(b.subarray(i, i + size));
  return Readable.from(parts);
}

const CONTROL = `Package: builder-test
Version: 1:2.3-4
Architecture: amd64
Maintainer: builder tests <tests@example.org>
Depends: libc6 (>= 2.36)
Description: a test package
 with a long description
 .
 over two paragraphs
`;

describe.skipIf(noDpkgDeb)('.deb control files, against dpkg-deb', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'deb-test-'));
    mkdirSync(join(dir, 'p/DEBIAN'), { recursive: true });
    mkdirSync(join(dir, 'p/usr/share/doc/builder-test'), { recursive: true });
    writeFileSync(join(dir, 'p/DEBIAN/control'), CONTROL);
    writeFileSync(join(dir, 'p/usr/share/doc/builder-test/README'), 'x'.repeat(100_000));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const z of ['gzip', 'xz', 'zstd', 'none']) {
    it(`reads the control file of a package built with -Z${z}, as dpkg-deb -f does`, async () => {
      const file = join(dir, `t-${z}.deb`);
      execFileSync('dpkg-deb', ['--root-owner-group', `-Z${z}`, '--build', join(dir, 'p'), file], { stdio: 'ignore' });
      const c = await readDebControl(chunks(readFileSync(file)));
      expect([c.name, c.version, c.arch]).toEqual(['builder-test', '1:2.3-4', 'amd64']);
      const fields = execFileSync('dpkg-deb', ['-f', file]).toString().trim();
      expect(c.paragraph).toBe(fields);
    });
  }

  it('lists the archive fields after the control fields, Description last, and names the pool path', async () => {
    const file = join(dir, 't-gzip.deb');
    const c = await readDebControl(chunks(readFileSync(file)));
    const p = packagesParagraph({
      ...c,
      filename: poolPath('main', c.name, c.version, c.arch),
      sha256: 'ab'.repeat(32),
      size: 9,
    });
    expect(p).toBe(
      [
        'Package: builder-test',
        'Version: 1:2.3-4',
        'Architecture: amd64',
        'Maintainer: builder tests <tests@example.org>',
        execFileSync('dpkg-deb', ['-f', file, 'Installed-Size']).toString().trim() === ''
          ? undefined
          : `Installed-Size: ${execFileSync('dpkg-deb', ['-f', file, 'Installed-Size']).toString().trim()}`,
        'Depends: libc6 (>= 2.36)',
        'Filename: pool/main/b/builder-test/builder-test_2.3-4_amd64.deb',
        'Size: 9',
        `SHA256: ${'ab'.repeat(32)}`,
        'Description: a test package',
        ' with a long description',
        ' .',
        ' over two paragraphs',
      ]
        .filter((l) => l !== undefined)
        .join('\n'),
    );
    expect(poolPath('main', 'libfoo', '1.0', 'all')).toBe('pool/main/libf/libfoo/libfoo_1.0_all.deb');
  });
});

describe('files that are not packages', () => {
  const ar = (members: [string, Buffer][]) =>
    Buffer.concat([
      Buffer.from('!<arch>\n'),
      ...members.flatMap(([name, body]) => [
        Buffer.from(
          `${name.padEnd(16)}${'0'.padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${String(body.length).padEnd(10)}\`\n`,
        ),
        body,
        Buffer.alloc(body.length % 2, '\n'),
      ]),
    ]);
  const refused = async (b: Buffer) => {
    const err = await readDebControl(chunks(b)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotAPackageError);
    return (err as Error).message;
  };

  it('names what is wrong', async () => {
    expect(await refused(Buffer.from('this is no package\n'))).toMatch(/no ar archive signature/);
    expect(await refused(Buffer.alloc(0))).toMatch(/empty/);
    expect(await refused(ar([['data.tar.gz', Buffer.from('x')]]))).toMatch(/first member is data\.tar\.gz/);
    expect(await refused(ar([['debian-binary', Buffer.from('3.0\n')]]))).toMatch(/unsupported Debian package format/);
    expect(await refused(ar([['debian-binary', Buffer.from('2.0\n')]]))).toMatch(/no control\.tar member/);
    expect(
      await refused(
        ar([
          ['debian-binary', Buffer.from('2.0\n')],
          ['control.tar.bz2', Buffer.from('BZh')],
        ]),
      ),
    ).toMatch(/control\.tar\.bz2: compression not supported/);
    expect(
      await refused(
        ar([
          ['debian-binary', Buffer.from('2.0\n')],
          ['control.tar.gz', Buffer.from('not gzip')],
        ]),
      ),
    ).toMatch(/control\.tar\.gz cannot be read/);
  });

  it('refuses a control file without the fields every package has, or with invalid ones', () => {
    expect(() => parseControl('Package: x1\nVersion: 1\n')).toThrow(/lacks Architecture/);
    expect(() => parseControl('Package: X Y\nVersion: 1\nArchitecture: all\n')).toThrow(/invalid package name/);
    expect(() => parseControl('Package: ok\nVersion: one\nArchitecture: all\n')).toThrow(/invalid version/);
    expect(() => parseControl('Package: ok\nno colon here\n')).toThrow(/malformed line/);
  });
});
