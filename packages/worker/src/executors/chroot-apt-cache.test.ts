/**
 * The worker's package cache on real files: what a prepare step left in its archives is kept
 * only when the base's apt index vouches for it, and what is kept is offered to the next run as
 * links it cannot change.
 */
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@builder/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AptCache, ARCHIVES } from './chroot-apt-cache.ts';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('AptCache', () => {
  let dir: string;
  let base: string;
  let cache: AptCache;
  const good = Buffer.from('a real package');
  const epoch = Buffer.from('a package with an epoch');

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'apt-cache-'));
    base = join(dir, 'base');
    mkdirSync(join(base, ARCHIVES), { recursive: true });
    mkdirSync(join(base, 'var/lib/apt/lists'), { recursive: true });
    writeFileSync(
      join(base, 'var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages'),
      [
        `Package: hello\nVersion: 2.10-3\nArchitecture: amd64\nFilename: pool/main/h/hello/hello_2.10-3_amd64.deb\nSHA256: ${sha(good)}\n`,
        `Package: libfoo\nVersion: 1:2.0-1\nArchitecture: all\nSHA256: ${sha(epoch)}\n`,
        `Package: other\nVersion: 1.0\nArchitecture: all\nSHA256: ${sha('other')}\n`,
      ].join('\n'),
    );
    cache = new AptCache(join(dir, 'apt-cache'), silentLogger);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A run's upper layer whose archives hold `files`. */
  function upper(name: string, files: Record<string, Buffer | string>): string {
    const u = join(dir, name);
    mkdirSync(join(u, ARCHIVES), { recursive: true });
    for (const [file, content] of Object.entries(files)) writeFileSync(join(u, ARCHIVES, file), content);
    return u;
  }

  it('keeps what the base index names with that hash, refuses the rest', async () => {
    const u = upper('u1', {
      'hello_2.10-3_amd64.deb': good,
      'libfoo_1%3a2.0-1_all.deb': epoch,
      // the right name with other content: what a job would plant
      'other_1.0_all.deb': 'not other',
      // a name no index has
      'evil_1.0_all.deb': 'evil',
      lock: '',
    });
    const r = await cache.harvest(base, u);
    expect(r.added.sort()).toEqual(['hello_2.10-3_amd64.deb', 'libfoo_1%3a2.0-1_all.deb']);
    expect(r.refused.sort()).toEqual(['evil_1.0_all.deb', 'other_1.0_all.deb']);
    expect(readdirSync(join(dir, 'apt-cache')).sort()).toEqual(['hello_2.10-3_amd64.deb', 'libfoo_1%3a2.0-1_all.deb']);
    expect(readFileSync(join(dir, 'apt-cache/hello_2.10-3_amd64.deb'))).toEqual(good);
    // what a crash mid-copy leaves goes at the next start, the cache stays
    writeFileSync(join(dir, 'apt-cache/.new-0f1e'), 'half');
    cache.removePartial();
    expect(readdirSync(join(dir, 'apt-cache')).sort()).toEqual(['hello_2.10-3_amd64.deb', 'libfoo_1%3a2.0-1_all.deb']);
  });

  it('never follows a link the sandbox left, in the path or as a file', async () => {
    const secret = join(dir, 'host-file');
    writeFileSync(secret, good);
    const u = upper('u2', {});
    symlinkSync(secret, join(u, ARCHIVES, 'hello_2.10-3_amd64.deb'));
    expect(await cache.harvest(base, u)).toEqual({ added: [], refused: ['hello_2.10-3_amd64.deb'] });
    // archives itself a link to a host directory holding a valid package
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'hello_2.10-3_amd64.deb'), good);
    const u3 = join(dir, 'u3');
    mkdirSync(join(u3, 'var/cache/apt'), { recursive: true });
    symlinkSync(elsewhere, join(u3, ARCHIVES));
    expect(await cache.harvest(base, u3)).toEqual({ added: [], refused: [] });
    expect(readdirSync(join(dir, 'apt-cache'))).toEqual([]);
  });

  it('offers what it keeps to the next run as links to the cached files, read-only', async () => {
    await cache.harvest(base, upper('u4', {}));
    await cache.harvest(base, upper('u5', { 'hello_2.10-3_amd64.deb': good }));
    const next = join(dir, 'u6');
    mkdirSync(next);
    expect(cache.seed(base, next)).toBe(1);
    const linked = statSync(join(next, ARCHIVES, 'hello_2.10-3_amd64.deb'));
    const cached = statSync(join(dir, 'apt-cache/hello_2.10-3_amd64.deb'));
    expect(linked.ino).toBe(cached.ino);
    expect(linked.mode & 0o777).toBe(0o644);
    // the directories are made as the base has them
    expect(statSync(join(next, ARCHIVES)).mode & 0o7777).toBe(statSync(join(base, ARCHIVES)).mode & 0o7777);
  });
});
