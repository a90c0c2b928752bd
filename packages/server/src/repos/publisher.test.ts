import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBlobStore } from '../artifacts/local-blobs.ts';
import { silentLogger } from '../log.ts';
import { RepoStore } from '../store/repos.ts';
import type { RunRow } from '../store/rows.ts';
import { runPath, type RunPath } from '../test-support/run-path.ts';
import { RepoPublisher } from './publisher.ts';
import { RepoKeys } from './signing.ts';
import { tarOf } from './tar-write.ts';

/** A minimal .deb made here: ar of debian-binary, control.tar.gz and an empty data.tar.gz. */
function deb(version: string): Buffer {
  const member = (name: string, body: Buffer) => [
    Buffer.from(
      `${name.padEnd(16)}${'0'.padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${String(body.length).padEnd(10)}\`\n`,
    ),
    body,
    Buffer.alloc(body.length % 2, '\n'),
  ];
  const control = `Package: hello\nVersion: ${version}\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: test\n`;
  return Buffer.concat([
    Buffer.from('!<arch>\n'),
    ...member('debian-binary', Buffer.from('2.0\n')),
    ...member('control.tar.gz', gzipSync(tarOf([{ name: './control', data: Buffer.from(control) }], 0))),
    ...member('data.tar.gz', gzipSync(tarOf([], 0))),
  ]);
}

describe('the publisher (in-memory SQLite, blobs and index files in a temp dir)', () => {
  let p: RunPath;
  let dir: string;
  let blobs: LocalBlobStore;
  let repos: RepoStore;
  let keys: Promise<RepoKeys>;
  const publishers: RepoPublisher[] = [];
  beforeEach(() => {
    p = runPath();
    dir = mkdtempSync(join(tmpdir(), 'publisher-test-'));
    blobs = new LocalBlobStore(join(dir, 'blobs'));
    repos = new RepoStore(p.db);
    keys = RepoKeys.load(p.db, p.clock.now());
  });
  afterEach(() => {
    p.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const publisher = () => {
    const pub = new RepoPublisher({
      repos,
      blobs,
      commit: p.commit,
      events: p.events,
      clock: p.clock,
      logger: silentLogger,
      loadKeys: () => keys,
      filesDir: join(dir, 'files'),
    });
    publishers.push(pub);
    return pub;
  };

  /** A run of `hello` that succeeded with these files, committed as an upload is. */
  async function succeeded(files: Record<string, Buffer>): Promise<RunRow> {
    const job = p.jobs.get('hello') ?? p.job({ name: 'hello' });
    const stored = [];
    for (const [path, bytes] of Object.entries(files)) {
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const tmp = join(dir, `${sha256}.tmp`);
      writeFileSync(tmp, bytes);
      await blobs.put(sha256, tmp, bytes.length);
      stored.push({ path, size: bytes.length, sha256 });
    }
    p.clock.t += 1000;
    const run = p.commit.write(() => {
      const r = p.runs.insertUploaded({
        jobId: job.id,
        number: p.jobs.allocateNumber(job.id),
        platform: 'p',
        script: '',
        params: {},
        trigger: 'manual',
        maxAttempts: 1,
        retryBackoffSec: 0,
        timeoutSec: 60,
        killGraceSec: 1,
        priority: 0,
        queuedAt: p.clock.t,
        worker: 'upload',
        finishedAt: p.clock.t,
      });
      p.artifacts.record(r.id, stored);
      return r;
    });
    p.commit.flush();
    return run;
  }

  it('publishes at start what runs committed while nothing published (a crash in between), and only then', async () => {
    const job = p.job({ name: 'hello' });
    p.commit.write(() =>
      repos.set(
        { name: 'r', suite: 'bookworm', component: 'main', keep: 2, sources: [{ jobId: job.id, platform: '' }] },
        1,
      ),
    );
    await succeeded({ 'hello_1.0_all.deb': deb('1.0') });
    await succeeded({ 'hello_1.1_all.deb': deb('1.1'), 'junk.deb': Buffer.from('junk') });
    const repo = repos.get('r')!;
    expect(repos.generations(repo.id)).toEqual([]);

    const pub = publisher();
    pub.start();
    await pub.idle();
    p.commit.flush();
    const [g1] = repos.generations(repo.id);
    expect(g1?.packages.map((x) => x.version)).toEqual(['1.0', '1.1']);
    expect(Object.keys(g1!.files).sort()).toEqual([
      'dists/bookworm/InRelease',
      'dists/bookworm/Release',
      'dists/bookworm/Release.gpg',
      'dists/bookworm/main/binary-amd64/Packages',
      'dists/bookworm/main/binary-amd64/Packages.gz',
      'dists/bookworm/main/binary-amd64/Packages.xz',
    ]);
    expect(repos.refused(repo.id).map((r) => [r.path, r.problem])).toEqual([
      ['junk.deb', 'not a Debian package: no ar archive signature (!<arch>)'],
    ]);

    // started again with nothing new: no new generation
    const again = publisher();
    again.start();
    await again.idle();
    expect(repos.generations(repo.id)).toHaveLength(1);

    // a changed index file is found at start and written again
    const packages = g1!.files['dists/bookworm/main/binary-amd64/Packages']!;
    writeFileSync(join(dir, 'files', packages.sha256), 'changed');
    const third = publisher();
    third.start();
    await third.idle();
    p.commit.flush();
    expect(repos.generations(repo.id).map((g) => g.generation)).toEqual([1, 2]);

    // a succeeded run told by its event: keep 2 drops the oldest version
    const run = await succeeded({ 'hello_1.2_all.deb': deb('1.2') });
    third.runSucceeded(run);
    await third.idle();
    p.commit.flush();
    const gens = repos.generations(repo.id);
    expect(gens.at(-1)!.packages.map((x) => x.version)).toEqual(['1.1', '1.2']);
    // files of generations no longer kept are deleted, those of kept ones stay
    const kept = new Set(gens.flatMap((g) => Object.values(g.files).map((f) => f.sha256)));
    expect(new Set(readdirSync(join(dir, 'files')))).toEqual(kept);
  }, 60_000);
});
