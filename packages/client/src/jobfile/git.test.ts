import { describe, expect, it } from 'vitest';
import { forgeUrl } from './git.ts';

describe('forgeUrl', () => {
  const sha = '0123456789abcdef0123456789abcdef01234567';
  it('links GitHub, GitLab and Codeberg files at a commit, from https and scp-like remotes', () => {
    expect(forgeUrl('https://github.com/o/r.git', sha, 'jobs/a b.yaml')).toBe(
      `https://github.com/o/r/blob/${sha}/jobs/a%20b.yaml`,
    );
    expect(forgeUrl('git@github.com:o/r.git', sha, 'j.yaml')).toBe(`https://github.com/o/r/blob/${sha}/j.yaml`);
    expect(forgeUrl('https://gitlab.com/g/sub/r', sha, 'j.yaml')).toBe(
      `https://gitlab.com/g/sub/r/-/blob/${sha}/j.yaml`,
    );
    expect(forgeUrl('ssh://git@codeberg.org/o/r.git', sha, 'j.yaml')).toBe(
      `https://codeberg.org/o/r/src/commit/${sha}/j.yaml`,
    );
  });
  it('drops credentials and knows no other host', () => {
    expect(forgeUrl('https://user:secret@github.com/o/r.git', sha, 'j.yaml')).toBe(
      `https://github.com/o/r/blob/${sha}/j.yaml`,
    );
    expect(forgeUrl('https://git.example.org/o/r.git', sha, 'j.yaml')).toBeUndefined();
    expect(forgeUrl('/srv/git/r.git', sha, 'j.yaml')).toBeUndefined();
  });
});
