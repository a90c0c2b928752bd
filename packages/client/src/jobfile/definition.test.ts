import { execFileSync } from 'node:child_process';
import { mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { definitionOf } from './git.ts';

describe('definitionOf', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'jobfile-git-')));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=T', '-c', 'user.email=t@example.com', ...args], { cwd: dir })
      .toString()
      .trim();

  it('is the path alone outside a checkout', async () => {
    await writeFile(join(dir, 'j.yaml'), 'x');
    expect(await definitionOf(join(dir, 'j.yaml'))).toEqual({
      repo: null,
      commit: null,
      path: join(dir, 'j.yaml'),
      modified: false,
    });
  });

  it('names the checkout without an origin, and says when the file differs from the commit', async () => {
    git('init', '-q');
    await writeFile(join(dir, 'j.yaml'), 'x');
    git('add', '.');
    git('commit', '-q', '-m', 'j');
    const commit = git('rev-parse', 'HEAD');
    expect(await definitionOf(join(dir, 'j.yaml'))).toEqual({ repo: dir, commit, path: 'j.yaml', modified: false });
    await writeFile(join(dir, 'j.yaml'), 'y');
    expect(await definitionOf(join(dir, 'j.yaml'))).toMatchObject({ commit, modified: true });
  });
});
