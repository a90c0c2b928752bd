/**
 * Jobs with a git source through real builder-server + builder-worker processes: a repository made
 * here and served by `git daemon` on loopback (and over file://), the commit recorded and shown,
 * a second run fetching only the new commit, `execute --ref`, and a missing ref or an unreachable
 * repository ending the run `error`. The chroot case (root only) builds the checkout in a sandbox
 * without network.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chrootSkipReason,
  ensureRootfs,
  ROOTFS,
  ROOTFS_TIMEOUT_MS,
  TEST_ID_RANGE,
} from '../packages/worker/src/test-support/chroot-root.ts';
import { git, gitDaemon, looseObjects } from '../packages/worker/src/test-support/git.ts';
import { Cluster, waitFor } from './harness.ts';

const BUILD = 'cat parts/* > "$BUILDER_OUTPUT/built"\necho "built $(cat parts/* | wc -l) lines"\n';
const SCRIPT =
  'cd "$BUILDER_SOURCE" && sh build.sh\n' +
  'echo "commit=$BUILDER_COMMIT ref=$BUILDER_REF"\necho "url=$BUILDER_URL run=$BUILDER_RUN_URL"\n';

class Repo {
  readonly path: string;
  daemon: { stop(): void } | undefined;
  constructor(base: string) {
    this.path = join(base, 'repo');
    execFileSync('git', ['init', '-q', '-b', 'main', this.path]);
    execFileSync('mkdir', ['-p', join(this.path, 'parts')]);
    writeFileSync(join(this.path, 'build.sh'), BUILD);
  }
  commit(part: string, text: string): string {
    writeFileSync(join(this.path, 'parts', part), text);
    git(this.path, 'add', '-A');
    git(this.path, 'commit', '-q', '-m', `add ${part}`);
    return git(this.path, 'rev-parse', 'HEAD');
  }
  /** `git daemon` on loopback; resolves to the URL once it answers. */
  async serve(): Promise<string> {
    this.daemon = await gitDaemon(join(this.path, '..'), 'repo');
    return this.daemon.url;
  }
  stop(): void {
    this.daemon?.stop();
  }
}

/** Loose objects per mirror under `mirrorsDir`. */
function mirrorObjects(mirrorsDir: string): number[] {
  return readdirSync(mirrorsDir).map((m) => looseObjects(join(mirrorsDir, m)));
}

describe('jobs with a git source (host executor)', () => {
  let c: Cluster;
  let repo: Repo;
  let url: string;
  beforeAll(async () => {
    c = await Cluster.start();
    repo = new Repo(c.dir);
    url = await repo.serve();
    c.startWorker('w1');
    await c.waitForWorkers('w1');
  });
  afterAll(async () => {
    repo?.stop();
    await c?.stop();
  });

  it('records the commit, fetches incrementally, builds another ref, and reports git failures as error', async () => {
    const first = repo.commit('a', 'one\n');
    git(repo.path, 'tag', 'v1');
    await c.schedule('src', SCRIPT, ['--source-git', url, '--source-ref', 'main']);

    const r1 = await c.client(['execute', 'src', '--follow']);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.stdout).toContain('built 1 lines');
    expect(r1.stdout).toContain(`commit=${first} ref=main`);
    expect(r1.stdout).toContain(`url=${c.url} run=${c.url}/job/src/run/1`);
    expect(r1.stdout).toContain(`[builder] source ${url} main at ${first}`);
    const run1 = JSON.parse((await c.client(['info', 'src/1', '--json'])).stdout);
    expect(run1).toMatchObject({ state: 'succeeded', ref: 'main', commit: first });
    expect((await c.client(['info', 'src/1'])).stdout).toMatch(new RegExp(`source:\\s+main at ${first}`));
    const page = await (await fetch(`${c.url}/job/src/run/1`)).text();
    expect(page).toContain(first);
    expect(await (await fetch(`${c.url}/job/src`)).text()).toContain(`<code>${url}</code> at <code>main</code>`);

    // the second run fetches into the same mirror: only the new commit, its tree and blob arrive
    const mirrors = join(c.dir, 'work-w1', 'git-mirrors');
    expect(mirrorObjects(mirrors)).toEqual([0]);
    const second = repo.commit('b', 'two\n');
    const r2 = await c.client(['execute', 'src', '--follow']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout).toContain('built 2 lines');
    expect((await c.run('src/2')) as unknown).toMatchObject({ commit: second });
    expect(mirrorObjects(mirrors)).toEqual([4]); // commit, root tree, parts/ tree, blob

    const r3 = await c.client(['execute', 'src', '--ref', 'v1', '--follow']);
    expect(r3.code, r3.stderr).toBe(0);
    expect(r3.stdout).toContain('built 1 lines');
    expect((await c.run('src/3')) as unknown).toMatchObject({ ref: 'v1', commit: first });

    const r4 = await c.client(['execute', 'src', '--ref', 'nope', '--follow']);
    expect(r4.code).not.toBe(0);
    const run4 = await c.run('src/4');
    expect(run4.state).toBe('error');
    expect(JSON.stringify(run4.result)).toContain('no commit for ref \\"nope\\"');

    await c.schedule('gone', SCRIPT, ['--source-git', `git://127.0.0.1:1/absent`]);
    expect((await c.client(['execute', 'gone', '--follow'])).code).not.toBe(0);
    const gone = await c.run('gone/1');
    expect(gone.state).toBe('error');
    expect(JSON.stringify(gone.result)).toMatch(/cannot fetch git:\/\/127\.0\.0\.1:1\/absent: fatal: /);

    // a job without a source has nothing to pick a ref of
    await c.schedule('plain', 'true\n');
    const bad = await c.client(['execute', 'plain', '--ref', 'main']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('has no source');
  }, 120_000);

  it('fetches over file:// as well', async () => {
    const head = git(repo.path, 'rev-parse', 'HEAD');
    await c.schedule('local', SCRIPT, ['--source-git', `file://${repo.path}`]);
    const r = await c.client(['execute', 'local', '--follow']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`commit=${head} ref=HEAD`);
  }, 60_000);
});

const skip = chrootSkipReason();
if (skip) console.warn(`chroot source test skipped: ${skip}`);

describe.skipIf(skip !== undefined)('a git source in the chroot sandbox', () => {
  let c: Cluster;
  let repo: Repo;
  beforeAll(async () => {
    await ensureRootfs();
    c = await Cluster.start();
    repo = new Repo(c.dir);
  }, ROOTFS_TIMEOUT_MS);
  afterAll(async () => {
    repo?.stop();
    await c?.stop();
  });

  it('builds the checked-out tree in a sandbox without network', async () => {
    const url = await repo.serve();
    const head = repo.commit('a', 'one\n');
    c.startWorker('cw', { args: ['--executor', 'chroot', '--root', ROOTFS, '--id-range', TEST_ID_RANGE] });
    await c.waitForWorkers('cw');
    const script = `echo "nets=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' ')"; touch "$BUILDER_SOURCE/writable"\n${SCRIPT}`;
    await c.schedule('boxed', script, ['--source-git', url]);
    const r = await c.client(['execute', 'boxed', '--follow']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('nets=lo ');
    expect(r.stdout).toContain('built 1 lines');
    expect(r.stdout).toContain(`commit=${head} ref=HEAD`);
    const files = JSON.parse((await c.client(['artifacts', 'boxed/1', '--json'])).stdout).files;
    expect(files.map((f: { path: string }) => f.path)).toEqual(['built']);
  }, 120_000);
});
