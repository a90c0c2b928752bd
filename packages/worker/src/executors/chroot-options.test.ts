import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../cli.ts';
import { UsageError } from '../errors.ts';
import { compileOptions } from '../options.ts';
import { parseIdRange, subidRange } from './chroot-idmap.ts';
import { bytes } from './chroot-options.ts';

const dir = mkdtempSync(join(tmpdir(), 'builder-chroot-opts-'));
const root = join(dir, 'root');
mkdirSync(join(root, 'etc'), { recursive: true });
mkdirSync(join(root, 'usr/bin'), { recursive: true });
writeFileSync(join(root, 'usr/bin/dash'), '');
symlinkSync('usr/bin', join(root, 'bin'));
symlinkSync('dash', join(root, 'usr/bin/sh'));
writeFileSync(join(root, 'etc/os-release'), 'ID=debian\n');
writeFileSync(
  join(root, 'etc/passwd'),
  'root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\nb:x:1000:1001::/:/bin/sh\n',
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = ['--remote', 'http://127.0.0.1:8330', '--token', 'W', '--platform', 'debian-12'];
const compile = (...args: string[]) => compileOptions(parseCommandLine([...base, ...args], {}));
/** Whatever this machine's /etc/subuid says, the tests give the range. */
const ids = ['--id-range', '100000'];

describe('--executor chroot options', () => {
  it('compiles every flag', () => {
    const o = compile(
      ...['--executor', 'chroot', '--root', root, '--chroot-user', 'b'],
      ...['--memory-limit', '2G', '--pids-limit', '512', '--cpu-shares', '512', '--id-range', '200000:70000'],
    );
    expect(o.chroot).toEqual({
      root,
      uid: 1000,
      gid: 1001,
      memoryLimit: 2 * 2 ** 30,
      pidsLimit: 512,
      cpuShares: 512,
      idRange: { start: 200000, count: 70000 },
    });
  });

  it('defaults to nobody, no memory limit, 4096 pids', () => {
    expect(compile('--executor', 'chroot', '--root', root, ...ids).chroot).toEqual({
      root,
      uid: 65534,
      gid: 65534,
      memoryLimit: undefined,
      pidsLimit: 4096,
      cpuShares: undefined,
      idRange: { start: 100000, count: 65536 },
    });
    expect(compile('--executor', 'chroot', '--root', root, '--chroot-user', '10:20', ...ids).chroot).toMatchObject({
      uid: 10,
      gid: 20,
    });
    expect(compile().chroot).toBeUndefined();
  });

  it.each([
    [['--root', root], /need --executor chroot/],
    [['--executor', 'chroot', '--root', 'rel'], /absolute path/],
    [['--executor', 'chroot', '--root', join(dir, 'missing')], /does not exist: make one with `debian\/mkroot/],
    [['--executor', 'chroot', '--root', join(root, 'etc')], /not a rootfs \(no \/bin\/sh\): make one with/],
    [['--executor', 'chroot', '--root', root, '--chroot-user', 'root'], /unprivileged/],
    [['--executor', 'chroot', '--root', root, '--chroot-user', '0:0'], /unprivileged/],
    [['--executor', 'chroot', '--root', root, '--chroot-user', 'ghost'], /not in .*etc\/passwd/],
    [['--executor', 'chroot', '--root', root, '--memory-limit', 'lots'], /--memory-limit must be a size/],
    [['--executor', 'chroot', '--root', root, '--pids-limit', '2'], /--pids-limit must be an integer/],
    [['--executor', 'chroot', '--root', root, '--cpu-shares', '1'], /--cpu-shares must be an integer/],
    [['--executor', 'chroot', '--root', root, '--id-range', '0:65536'], /--id-range must be START\[:COUNT\]/],
    [['--executor', 'chroot', '--root', root, '--id-range', '100000:1000'], /COUNT >= 65536/],
    [['--id-range', '100000'], /--id-range need --executor chroot/],
    [['--executor', 'chroot', '--root', root, '--chroot-user', '70000:1', ...ids], /outside the sandbox's 65536 ids/],
  ])('%j is a usage error', (args, message) => {
    expect(() => compile(...args)).toThrow(UsageError);
    expect(() => compile(...args)).toThrow(message);
  });

  it("takes root's first range of 65536 ids that both /etc/subuid and /etc/subgid grant", () => {
    const uid = join(dir, 'subuid');
    const gid = join(dir, 'subgid');
    writeFileSync(uid, 'alice:100000:65536\nroot:165536:1000\nroot:300000:65536\n');
    writeFileSync(gid, 'alice:100000:65536\nroot:300000:65536\n');
    expect(subidRange('root', { uid, gid })).toEqual({ start: 300000, count: 65536 });
    expect(subidRange('bob', { uid, gid })).toBeUndefined();
    expect(subidRange('root', { uid, gid: join(dir, 'none') })).toBeUndefined();
    expect(parseIdRange('4000000000:65536')).toEqual({ start: 4_000_000_000, count: 65536 });
    expect(() => parseIdRange('4294967000:65536')).toThrow(/--id-range/);
  });

  it('reads sizes', () => {
    expect(bytes('64M')).toBe(64 * 2 ** 20);
    expect(bytes('1g')).toBe(2 ** 30);
    expect(bytes('512MiB')).toBe(512 * 2 ** 20);
    expect(bytes('1.5G')).toBe(1.5 * 2 ** 30);
    expect(() => bytes('1k')).toThrow(/at least 4M/);
  });
});
