import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3rver, type S3Fixture } from '../packages/server/src/test-support/s3rver.ts';
import { Cluster, serverCommand } from './harness.ts';

const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const verify = (c: Cluster, extra: string[] = []) => serverCommand(['verify', '--data-dir', c.dataDir, ...extra]);

/** `builder-client upload JOB FILE --json`, which must succeed. */
async function upload(c: Cluster, job: string, file: string) {
  const r = await c.client(['upload', job, file, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { number: number; sent: number; stored: number };
}

describe('integrity of stored bytes (local store)', () => {
  let c: Cluster;
  const blobPath = (h: string) => join(c.dataDir, 'artifacts', 'blobs', h.slice(0, 2), h);
  const quarantined = () => readdirSync(join(c.dataDir, 'artifacts', 'quarantine'));
  const download = (ref: string, path: string) => fetch(`${c.url}/job/${ref}/artifacts/${path}`);

  beforeAll(async () => {
    c = await Cluster.start();
    await c.schedule('pkg', 'true');
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('refuses a file whose staging write fails (as on a full disk) instead of storing it short', async () => {
    // under the staging stream's 4 MiB buffer, so the failing write is the last one, reported at end
    const data = randomBytes(3 * 2 ** 20);
    const file = join(c.dir, 'big.bin');
    writeFileSync(file, data);
    await c.killServer('SIGTERM');
    await c.startServer({ maxFileBytes: 2 * 2 ** 20 });
    const r = await c.client(['upload', 'pkg', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/upload refused: storing the artifacts failed: .*staging big.bin failed: .*EFBIG/);
    expect(existsSync(blobPath(sha(data)))).toBe(false);
    expect(readdirSync(join(c.dataDir, 'artifacts', 'tmp'))).toEqual([]);

    // room again: the same file is sent and stored whole, not deduplicated against anything
    await c.killServer('SIGTERM');
    await c.startServer();
    const up = await upload(c, 'pkg', file);
    expect(up).toMatchObject({ sent: data.length, stored: 1 });
    const res = await download(`pkg/run/${up.number}`, 'big.bin');
    expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
  });

  it('verify finds a blob truncated by hand, names its runs, quarantines it; the next upload stores it again', async () => {
    const data = randomBytes(100_000);
    const h = sha(data);
    const file = join(c.dir, 'a.bin');
    writeFileSync(file, data);
    const first = await upload(c, 'pkg', file);
    const second = await upload(c, 'pkg', file);
    expect(second).toMatchObject({ sent: 0, stored: 0 });
    truncateSync(blobPath(h), 1000);

    // a damaged blob is not served short
    const short = await download(`pkg/run/${first.number}`, 'a.bin');
    expect(short.status).toBe(410);
    expect(await short.text()).toMatch(/a\.bin are damaged \(1000 of 100000 bytes\)/);

    // while the server runs
    const r = await verify(c);
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(
      new RegExp(
        `^damaged ${h}: 1000 bytes hashing to ${sha(data.subarray(0, 1000))}, 100000 expected; ` +
          `quarantined to ${c.dataDir}/artifacts/quarantine/${h}\\.\\d{8}T\\d{9}Z$`,
      ),
    );
    expect(lines).toContain(`  artifact of pkg#${second.number} debian-12: a.bin`);
    expect(lines).toContain(`  artifact of pkg#${first.number} debian-12: a.bin`);
    expect(r.stdout).toMatch(/checked \d+ blobs \(.*\) in local .*: 1 damaged; the next upload of those files/);
    expect(existsSync(blobPath(h))).toBe(false);
    expect(quarantined()).toEqual([expect.stringMatching(new RegExp(`^${h}\\.`))]);
    const gone = await download(`pkg/run/${first.number}`, 'a.bin');
    expect(gone.status).toBe(410);
    expect(await gone.text()).toMatch(/gone from the artifact store .*quarantined by builder-server verify/);
    // until it is uploaded again, verify names the runs that lost it
    const lost = await verify(c);
    expect(lost.code, lost.stderr).toBe(1);
    expect(lost.stdout).toContain(
      `missing ${h} (100000 bytes): not in the store\n  artifact of pkg#${second.number} debian-12: a.bin\n`,
    );
    expect(lost.stdout).toMatch(/: 0 damaged, 1 missing; the next upload/);

    const again = await upload(c, 'pkg', file);
    expect(again).toMatchObject({ sent: data.length, stored: 1 });
    // content-addressed: the older runs' downloads are whole again too
    const healed = await download(`pkg/run/${first.number}`, 'a.bin');
    expect(Buffer.from(await healed.arrayBuffer()).equals(data)).toBe(true);

    const clean = await verify(c, ['--json']);
    expect(clean.code, clean.stderr).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({ damaged: [], unreadable: [], missing: [] });
  });

  it('does not deduplicate against a blob cut short: the next upload replaces it', async () => {
    const data = randomBytes(50_000);
    const file = join(c.dir, 'b.bin');
    writeFileSync(file, data);
    await upload(c, 'pkg', file);
    truncateSync(blobPath(sha(data)), 10);
    expect(await upload(c, 'pkg', file)).toMatchObject({ sent: data.length, stored: 1 });
    expect(readFileSync(blobPath(sha(data))).equals(data)).toBe(true);
  });

  it('says how it was misused, with exit codes 2 and 3', async () => {
    const bad = await verify(c, ['--artifacts', 'gs://x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--artifacts must be s3://BUCKET/PREFIX or a directory');
    const typo = await serverCommand(['verify', '--data-dir', join(c.dir, 'typo')]);
    expect(typo.code).toBe(3);
    expect(typo.stderr).toContain('no builder database');
  });
});

describe('integrity of stored bytes (S3 store, s3rver on loopback)', () => {
  let c: Cluster;
  let s3: S3Fixture;
  const store = () => ['--artifacts', 's3://builder/runs', '--s3-endpoint', s3.endpoint];
  beforeAll(async () => {
    s3 = await startS3rver(mkdtempSync(join(tmpdir(), 'builder-s3-verify-')));
    // the server and verify inherit the fixture's credentials from this environment
    c = await Cluster.start(store());
    await c.schedule('pkg', 'true');
  });
  afterAll(async () => {
    await c?.stop();
    await s3?.close();
  });

  it('verify re-hashes the bucket, quarantines a damaged object under quarantine/ and names its run', async () => {
    const data = randomBytes(20_000);
    const h = sha(data);
    const file = join(c.dir, 'obj.bin');
    writeFileSync(file, data);
    const up = await upload(c, 'pkg', file);
    // the same size, other bytes: only re-hashing finds it
    await s3.put(`runs/${h.slice(0, 2)}/${h}`, Buffer.alloc(data.length));

    const r = await verify(c, [...store(), '--json']);
    expect(r.code, r.stderr).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({
      store: 's3://builder/runs',
      checked: 1,
      damaged: [
        {
          sha256: h,
          size: data.length,
          actualSha256: sha(Buffer.alloc(data.length)),
          runs: [{ job: 'pkg', number: up.number, platform: 'debian-12', path: 'obj.bin' }],
        },
      ],
    });
    expect(report.damaged[0].quarantinedTo).toMatch(new RegExp(`^s3://builder/runs/quarantine/${h}\\.`));
    expect((await fetch(`${c.url}/job/pkg/run/${up.number}/artifacts/obj.bin`)).status).toBe(410);
    expect(await upload(c, 'pkg', file)).toMatchObject({ sent: data.length, stored: 1 });
    expect((await verify(c, store())).code).toBe(0);
  });
});
