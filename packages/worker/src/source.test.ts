import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SourceError, Sources } from './source.ts';
import { git, gitDaemon, looseObjects } from './test-support/git.ts';

let dir: string;
let repo: string;
let daemon: { stop(): void } | undefined;

async function commit(file: string, text: string): Promise<string> {
  await writeFile(join(repo, file), text);
  git(repo, 'add', file);
  git(repo, 'commit', '-q', '-m', `change ${file}`);
  return git(repo, 'rev-parse', 'HEAD');
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'builder-source-'));
  repo = join(dir, 'repo');
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
});

afterEach(async () => {
  daemon?.stop();
  daemon = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('Sources', () => {
  it('fetches over file:// into a mirror, resolves branch, tag and SHA, checks out the tree', async () => {
    const first = await commit('a.txt', 'one\n');
    git(repo, 'tag', 'v1');
    const second = await commit('a.txt', 'two\n');
    const sources = new Sources({ workDir: join(dir, 'work'), timeoutMs: 60_000 });
    const url = `file://${repo}`;
    expect(await sources.fetch({ git: url, ref: 'main' })).toBe(second);
    expect(await sources.fetch({ git: url, ref: 'v1' })).toBe(first);
    expect(await sources.fetch({ git: url, ref: first.slice(0, 10) })).toBe(first);
    expect(sources.mirrorPath(url)).toMatch(/git-mirrors\/[0-9a-f]{64}\.git$/);

    const out = join(dir, 'run', 'source');
    await sources.checkout({ git: url, ref: 'v1' }, first, out);
    expect(await readFile(join(out, 'a.txt'), 'utf8')).toBe('one\n');
  });

  it('over git daemon, a second fetch transfers only the new commit', async () => {
    await commit('a.txt', 'one\n');
    daemon = await gitDaemon(dir, 'repo');
    const url = daemon.url;
    const sources = new Sources({ workDir: join(dir, 'work'), timeoutMs: 60_000 });
    await sources.fetch({ git: url, ref: 'HEAD' });
    const mirror = sources.mirrorPath(url);
    expect(looseObjects(mirror)).toBe(0); // the clone arrived as one pack

    const next = await commit('b.txt', 'new\n');
    expect(await sources.fetch({ git: url, ref: 'main' })).toBe(next);
    // a small fetch is unpacked: exactly the new commit, its tree and its blob
    expect(looseObjects(mirror)).toBe(3);
  });

  it('a missing ref or an unreachable repository is a SourceError naming what git said', async () => {
    await commit('a.txt', 'one\n');
    const sources = new Sources({ workDir: join(dir, 'work'), timeoutMs: 60_000 });
    const url = `file://${repo}`;
    await expect(sources.fetch({ git: url, ref: 'nope' })).rejects.toThrow(/no commit for ref "nope"/);
    const missing = sources.fetch({ git: `file://${dir}/absent`, ref: 'HEAD' });
    await expect(missing).rejects.toBeInstanceOf(SourceError);
    await expect(missing).rejects.toThrow(/cannot fetch .*absent: fatal: .*/);
    // ext:: would run a command on the worker, outside any sandbox
    await expect(sources.fetch({ git: `ext::sh -c touch% ${dir}/pwned`, ref: 'HEAD' })).rejects.toThrow(/transport/);
  });

  it('a fetch stopped by its signal ends with a SourceError and leaves no mirror', async () => {
    await commit('a.txt', 'one\n');
    const sources = new Sources({ workDir: join(dir, 'work'), timeoutMs: 60_000 });
    const url = `file://${repo}`;
    const stop = new AbortController();
    stop.abort();
    await expect(sources.fetch({ git: url, ref: 'main' }, stop.signal)).rejects.toThrow(/stopped/);
    expect(readdirSync(join(dir, 'work', 'git-mirrors'))).toEqual([]);
  });

  it('serializes two fetches of one mirror', async () => {
    const head = await commit('a.txt', 'one\n');
    const sources = new Sources({ workDir: join(dir, 'work'), timeoutMs: 60_000 });
    const url = `file://${repo}`;
    const both = await Promise.all([
      sources.fetch({ git: url, ref: 'main' }),
      sources.fetch({ git: url, ref: 'main' }),
    ]);
    expect(both).toEqual([head, head]);
  });

  it('expires mirrors no run used for the given time, and what an interrupted clone left', async () => {
    await commit('a.txt', 'one\n');
    const other = join(dir, 'other');
    execFileSync('git', ['init', '-q', '-b', 'main', other]);
    git(other, 'commit', '-q', '--allow-empty', '-m', 'empty');
    const sources = new Sources({ workDir: join(dir, 'work'), timeoutMs: 60_000 });
    const [used, unused] = [`file://${repo}`, `file://${other}`];
    await sources.fetch({ git: unused, ref: 'main' });
    await sources.fetch({ git: used, ref: 'main' });
    const day = 86_400_000;
    // the unused one was last fetched 31 days ago; a clone was interrupted
    const old = new Date(Date.now() - 31 * day);
    await utimes(sources.mirrorPath(unused), old, old);
    await mkdir(`${sources.mirrorPath(used)}.partial`);

    expect((await sources.expire(30 * day)).sort()).toEqual(
      [sources.mirrorPath(unused), `${sources.mirrorPath(used)}.partial`].sort(),
    );
    expect(readdirSync(join(dir, 'work', 'git-mirrors'))).toEqual([basename(sources.mirrorPath(used))]);
    // a fetch renews a mirror's time: 31 days on, the one in use is still there
    expect(await sources.expire(30 * day, Date.now() + 29 * day)).toEqual([]);
    // and a removed mirror is cloned again by the next run that needs it
    await sources.fetch({ git: unused, ref: 'main' });
    expect(readdirSync(join(dir, 'work', 'git-mirrors'))).toHaveLength(2);
  });
});
