/** The chown-shift of a base rootfs into the sandbox's id range, on a small tree (needs root: chown). */
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../errors.ts';
import { readStamp, shiftRootfs } from './chroot-idmap.ts';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('chroot id shift tests skipped: chown needs root');
const dir = mkdtempSync(join(tmpdir(), 'builder-idmap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const owner = (path: string) => {
  const st = lstatSync(path);
  return [st.uid, st.gid];
};

describe.skipIf(!isRoot)('shiftRootfs', () => {
  const root = join(dir, 'root');
  const range = { start: 200000, count: 65536 };

  it('moves every id below COUNT to START+id, keeps set-id bits, stamps the base; again changes nothing', () => {
    mkdirSync(join(root, 'etc'), { recursive: true });
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    writeFileSync(join(root, 'usr/bin/passwd'), '');
    chmodSync(join(root, 'usr/bin/passwd'), 0o4755);
    writeFileSync(join(root, 'usr/bin/chage'), '');
    chownSync(join(root, 'usr/bin/chage'), 0, 42);
    chmodSync(join(root, 'usr/bin/chage'), 0o2755);
    symlinkSync('usr/bin', join(root, 'bin'));
    mkdirSync(join(root, 'home/b'), { recursive: true });
    chownSync(join(root, 'home/b'), 1000, 1000);
    expect(shiftRootfs(root, range)).toBe(9); // every entry: /, etc, usr, usr/bin, 2 files, bin, home, home/b
    expect(owner(root)).toEqual([200000, 200000]);
    expect(owner(join(root, 'bin'))).toEqual([200000, 200000]); // the link itself
    expect(owner(join(root, 'usr/bin/chage'))).toEqual([200000, 200042]);
    expect(owner(join(root, 'home/b'))).toEqual([201000, 201000]);
    expect(lstatSync(join(root, 'usr/bin/passwd')).mode & 0o7777).toBe(0o4755);
    expect(lstatSync(join(root, 'usr/bin/chage')).mode & 0o7777).toBe(0o2755);
    expect(readStamp(root)).toEqual(range);
    expect(shiftRootfs(root, range)).toBe(0);
  });

  it('shifts what was added from the host since, and refuses another range', () => {
    writeFileSync(join(root, 'etc/added'), '');
    expect(shiftRootfs(root, range)).toBe(1);
    expect(owner(join(root, 'etc/added'))).toEqual([200000, 200000]);
    expect(() => shiftRootfs(root, { start: 300000, count: 65536 })).toThrow(UsageError);
    expect(() => shiftRootfs(root, { start: 300000, count: 65536 })).toThrow(/same --id-range/);
  });
});
