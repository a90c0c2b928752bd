import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../cli.ts';
import { UsageError } from '../errors.ts';
import { compileOptions } from '../options.ts';
import { compileJailOptions } from './jail-options.ts';

const base = ['--remote', 'http://127.0.0.1:8330', '--token', 'W', '--platform', 'freebsd-14'];
const compile = (...args: string[]) => compileOptions(parseCommandLine([...base, ...args], {}));

describe('--jail-* options', () => {
  it('compiles every flag', () => {
    const o = compile(
      ...['--executor', 'jail', '--capacity', '2', '--jail-zfs-snapshot', 'zroot/builder/base@clean'],
      ...['--jail-root', '/j', '--jail-ip-range', '10.0.0.1-10.0.0.2', '--jail-user', 'bob'],
      ...['--jail-devfs-ruleset', '10', '--jail-interface', 'lo1'],
    );
    expect(o.jail).toEqual({
      base: {
        kind: 'zfs',
        snapshot: 'zroot/builder/base@clean',
        dataset: 'zroot/builder/base',
        parent: 'zroot/builder',
      },
      root: '/j',
      ipFirst: 0x0a000001,
      ipLast: 0x0a000002,
      user: 'bob',
      devfsRuleset: 10,
      interface: 'lo1',
    });
  });

  it('defaults all but the base', () => {
    expect(compile('--executor', 'jail', '--jail-base-dir', '/b').jail).toMatchObject({
      base: { kind: 'copy', dir: '/b' },
      root: '/usr/local/builder/jails',
      user: 'builder',
      devfsRuleset: 4,
      interface: undefined,
    });
    expect(compile().jail).toBeUndefined();
  });

  it.each([
    [['--executor', 'jail'], /exactly one of --jail-zfs-snapshot .* or --jail-base-dir/],
    [['--executor', 'jail', '--jail-base-dir', '/b', '--jail-zfs-snapshot', 'z/b@s'], /exactly one/],
    [['--jail-base-dir', '/b'], /--jail-\* options need --executor jail/],
    [['--executor', 'jail', '--jail-zfs-snapshot', 'zroot'], /not a snapshot/],
    [['--executor', 'jail', '--jail-base-dir', 'rel'], /absolute path/],
    [['--executor', 'jail', '--jail-base-dir', '/b', '--jail-ip-range', '10.0.0.9-10.0.0.1'], /FIRST-LAST/],
    [
      ['--executor', 'jail', '--jail-base-dir', '/b', '--jail-ip-range', '10.0.0.1-10.0.0.2', '--capacity', '3'],
      /holds 2 address\(es\) but --capacity is 3/,
    ],
    [['--executor', 'jail', '--jail-base-dir', '/b', '--jail-user', 'root'], /unprivileged/],
    [['--executor', 'jail', '--jail-base-dir', '/b', '--jail-devfs-ruleset', '0'], /ruleset number/],
    [['--executor', 'jail', '--jail-base-dir', '/b', '--jail-interface', 'lo 1'], /not an interface/],
  ])('%j is a usage error', (args, message) => {
    expect(() => compile(...args)).toThrow(UsageError);
    expect(() => compile(...args)).toThrow(message);
  });

  it('compileJailOptions alone takes the capacity it must serve', () => {
    expect(() => compileJailOptions({ baseDir: '/b', ipRange: '127.0.2.10-127.0.2.10' }, 1)).not.toThrow();
  });
});
