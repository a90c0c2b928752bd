import { describe, expect, it } from 'vitest';
import { FORGES, branchMatches, checkProof, identifyForge, readPush } from './forges.ts';
import { forgeHeaders, payload } from '../test-support/forge-payloads.ts';

const SHA = 'bffeb74224043ba2feb48d137756c8a9331c449a';

describe('forge push events', () => {
  it("checks GitHub's documented signature example", () => {
    // docs.github.com, "Validating webhook deliveries": this secret and body give this signature
    const body = Buffer.from('Hello, World!');
    const headers = {
      'x-github-event': 'push',
      'x-hub-signature-256': 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
    };
    expect(checkProof('github', headers, body, "It's a Secret to Everybody")).toBe('ok');
    expect(checkProof('github', headers, body, "It's a secret to everybody")).toBe('wrong');
    expect(checkProof('github', { 'x-github-event': 'push' }, body, 'x')).toBe('missing');
  });

  it.each(FORGES)('%s: tells the forge, its delivery, and accepts only its own proof', (forge) => {
    const body = JSON.stringify(payload(forge, { ref: 'refs/heads/main', after: SHA }));
    const headers = forgeHeaders(forge, body, 'the-hook-secret-1234', { delivery: 'd-1' });
    const seen = identifyForge(headers);
    expect(seen).toMatchObject({ forge, delivery: 'd-1', isPush: true });
    expect(checkProof(forge, headers, Buffer.from(body), 'the-hook-secret-1234')).toBe('ok');
    expect(checkProof(forge, headers, Buffer.from(body), 'another-secret-12345')).toBe('wrong');
    // one byte changed in the body
    expect(checkProof(forge, headers, Buffer.from(body.replace('main', 'mainx')), 'the-hook-secret-1234')).toBe(
      forge === 'gitlab' ? 'ok' : 'wrong', // GitLab sends the secret itself, not a signature
    );
    const stripped = Object.fromEntries(Object.entries(headers).filter(([k]) => k !== seen!.proofHeader));
    expect(checkProof(forge, stripped, Buffer.from(body), 'the-hook-secret-1234')).toBe('missing');
    expect(readPush(JSON.parse(body))).toEqual({ kind: 'branch', branch: 'main', commit: SHA, defaultBranch: 'main' });
  });

  it('Gitea signed only with the GitHub header is refused: each forge proves with its own', () => {
    const body = JSON.stringify(payload('gitea', { ref: 'refs/heads/main', after: SHA }));
    const { 'x-gitea-signature': _, ...headers } = forgeHeaders('gitea', body, 'the-hook-secret-1234');
    expect(checkProof('gitea', headers, Buffer.from(body), 'the-hook-secret-1234')).toBe('missing');
  });

  it('ignores tags, deletions and other events; refuses what is no push', () => {
    expect(identifyForge({ 'x-github-event': 'ping' })).toMatchObject({ forge: 'github', isPush: false });
    expect(identifyForge({ 'x-gitlab-event': 'Tag Push Hook' })).toMatchObject({ forge: 'gitlab', isPush: true });
    expect(identifyForge({ 'content-type': 'application/json' })).toBeUndefined();
    expect(readPush(payload('gitlab', { ref: 'refs/tags/v1', after: SHA }))).toMatchObject({
      kind: 'ignored',
      why: 'refs/tags/v1 is a tag push: only branch pushes queue runs',
    });
    for (const forge of FORGES) {
      expect(readPush(payload(forge, { ref: 'refs/heads/main', after: SHA, deleted: true }))).toMatchObject({
        kind: 'ignored',
        why: 'refs/heads/main was deleted: nothing to build',
      });
    }
    expect(readPush({ zen: 'Encourage flow.' })).toEqual({ kind: 'invalid', why: 'not a push event: no "ref"' });
    expect(readPush({ ref: 'refs/heads/x', after: 'HEAD' })).toMatchObject({ kind: 'invalid' });
  });

  it('matches branches by name or pattern', () => {
    expect(branchMatches('main', ['main'])).toBe(true);
    expect(branchMatches('main', ['refs/heads/main'])).toBe(true);
    expect(branchMatches('mainline', ['main'])).toBe(false);
    expect(branchMatches('release/1.2', ['release/*'])).toBe(true);
    expect(branchMatches('release/1/2', ['release/*'])).toBe(false);
    expect(branchMatches('release/1/2', ['release/**'])).toBe(true);
    expect(branchMatches('a.b', ['a*b'])).toBe(true);
    expect(branchMatches('axb', ['a.b'])).toBe(false);
  });
});
