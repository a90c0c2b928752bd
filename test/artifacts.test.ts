import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeManifest } from '@builder/protocol';
import { Header } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3rver, type S3Fixture } from '../packages/server/src/test-support/s3rver.ts';
import { Cluster, waitFor } from './harness.ts';
import { Peer } from './wire.ts';

const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** Every blob file in the local store. */
function blobs(c: Cluster): string[] {
  const dir = join(c.dataDir, 'artifacts', 'blobs');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((p) => readdirSync(join(dir, p)));
}

/** A hand-made transfer body: any manifest, any tar entries (names, types, contents). */
function craft(
  manifest: { path: string; size: number; sha256: string }[],
  entries: { path: string; data?: Buffer; type?: 'File' | 'SymbolicLink'; linkpath?: string }[],
  opts: { truncate?: boolean } = {},
): Buffer {
  const parts: Buffer[] = [encodeManifest({ files: manifest })];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const block = Buffer.alloc(512);
    new Header({
      path: e.path,
      mode: 0o644,
      size: e.type === 'SymbolicLink' ? 0 : data.length,
      type: e.type ?? 'File',
      linkpath: e.linkpath,
      mtime: new Date(0),
    }).encode(block);
    parts.push(block);
    if (e.type !== 'SymbolicLink') parts.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  if (!opts.truncate) parts.push(Buffer.alloc(1024));
  const body = Buffer.concat(parts);
  return opts.truncate ? body.subarray(0, body.length - 100) : body;
}

describe('artifacts: a job’s output dir becomes its run’s files', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await Cluster.start(['--artifact-limit', '5M']);
    c.startWorker('w1', { capacity: 2 });
    await c.waitForWorkers('w1');
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('sends files, nested dirs and in-dir links, lists them and downloads them verified', async () => {
    await c.schedule(
      'pkg',
      [
        'cd "$BUILDER_OUTPUT"',
        'echo hello > hello.txt',
        'mkdir -p deep/er',
        'seq 1 200000 > deep/er/numbers.txt',
        'ln -s hello.txt link.txt',
        ': > empty',
      ].join('\n'),
    );
    const r = await c.client(['execute', 'pkg', '--follow']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/\[builder\] artifacts: 4 files/);

    const list = await c.client(['artifacts', 'pkg/1']);
    expect(list.code).toBe(0);
    const numbers = Array.from({ length: 200000 }, (_, i) => `${i + 1}\n`).join('');
    expect(list.stdout).toContain(`deep/er/numbers.txt`);
    expect(list.stdout).toContain(sha(numbers));
    const json = JSON.parse((await c.client(['artifacts', 'pkg#1', '--json'])).stdout);
    expect(json.files).toEqual([
      { path: 'deep/er/numbers.txt', size: numbers.length, sha256: sha(numbers) },
      { path: 'empty', size: 0, sha256: sha('') },
      { path: 'hello.txt', size: 6, sha256: sha('hello\n') },
      { path: 'link.txt', size: 6, sha256: sha('hello\n') },
    ]);
    // hello.txt and link.txt share one blob
    expect(blobs(c)).toHaveLength(3);

    const dir = join(c.dir, 'download');
    const dl = await c.client(['artifacts', 'pkg/1', '--download', dir]);
    expect(dl.code, dl.stderr).toBe(0);
    expect(dl.stderr).toContain('4 files');
    expect(readFileSync(join(dir, 'deep/er/numbers.txt'), 'utf8')).toBe(numbers);
    expect(readFileSync(join(dir, 'link.txt'), 'utf8')).toBe('hello\n');

    const res = await fetch(`${c.url}/job/pkg/run/1/artifacts/hello.txt`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-builder-sha256')).toBe(sha('hello\n'));
    expect(res.headers.get('content-security-policy')).toContain('sandbox');
    expect(await res.text()).toBe('hello\n');
    const ranged = await fetch(`${c.url}/job/pkg/run/1/artifacts/deep/er/numbers.txt`, {
      headers: { range: 'bytes=0-5' },
    });
    expect(ranged.status).toBe(206);
    expect(await ranged.text()).toBe('1\n2\n3\n');
    expect((await fetch(`${c.url}/job/pkg/run/1/artifacts/nope.txt`)).status).toBe(404);

    // the same output again: nothing new in the store, and nothing sent that it had
    const again = await c.client(['execute', 'pkg', '--follow']);
    expect(again.code).toBe(0);
    expect(again.stdout + again.stderr).toMatch(
      /artifacts: 4 files, 1.2 MiB, 0 B sent in [\d.]+s \(1.2 MiB the server had already\)/,
    );
    expect(blobs(c)).toHaveLength(3);
  });

  it('refuses a link out of the output dir, a FIFO and too much data, with the reason on the run', async () => {
    const cases: [string, string, RegExp][] = [
      ['escape', 'ln -s /etc/passwd "$BUILDER_OUTPUT/passwd"; echo ok > "$BUILDER_OUTPUT/a"', /pointing outside/],
      ['fifo', 'mkfifo "$BUILDER_OUTPUT/pipe"', /pipe is a FIFO/],
      ['huge', 'head -c 6000000 /dev/zero > "$BUILDER_OUTPUT/big"', /over the server's limit/],
    ];
    for (const [name, script, reason] of cases) {
      await c.schedule(name, script);
      const r = await c.client(['execute', name, '--follow']);
      expect(r.code, name).toBe(1);
      const run = await c.run(`${name}/1`);
      expect(run.state).toBe('error');
      expect(JSON.stringify(run.result)).toMatch(reason);
      expect(JSON.parse((await c.client(['artifacts', `${name}/1`, '--json'])).stdout).files).toEqual([]);
    }
    expect(readdirSync(join(c.dataDir, 'artifacts', 'tmp'))).toEqual([]);
  });

  it('refuses hostile transfers and keeps nothing half-written of them', async () => {
    // the sender is the worker holding the run (a raw protocol worker, so the test has its
    // assignment's secret): what it sends is hostile, who sends it is right
    await c.client(['schedule', 'slow', '--platform', 'raw', '--script', c.script('slow.sh', 'sleep 30')]);
    const holder = await Peer.open(c.url);
    const holderToken = c.workerToken('holder');
    const worker = { name: 'holder', platform: 'raw', labels: [], capacity: 1, executor: 'host', running: [] };
    expect((await holder.hello('worker', holderToken, { worker })).type).toBe('welcome');
    await c.client(['execute', 'slow']);
    const assign = (await holder.next(5000, 'the assignment')) as unknown as {
      run: { runId: string; attempt: number; attemptSecret: string };
    };
    holder.send({ type: 'started', runId: assign.run.runId, attempt: 1, startedAt: Date.now() });
    await waitFor(async () => (await c.run('slow/1')).state === 'running');
    const run = await c.run('slow/1');
    const url = `${c.url}/artifacts/${run.id}/${run.attempt}`;
    const put = (body: Buffer, token = holderToken, to = url) =>
      fetch(to, {
        method: 'PUT',
        body,
        headers: { authorization: `Bearer ${token}`, 'x-builder-attempt-secret': assign.run.attemptSecret },
      });
    const a = Buffer.from('aaa');
    const good = { path: 'a.txt', size: 3, sha256: sha(a) };
    const before = blobs(c).length;

    const expectRefused = async (res: Response, status: number, text: RegExp) => {
      expect(res.status).toBe(status);
      const body = (await res.json()) as { ok: boolean; error: string };
      expect(body.ok).toBe(false);
      expect(body.error).toMatch(text);
    };
    await expectRefused(await put(craft([good], [{ path: '../a.txt', data: a }])), 422, /escapes the output dir/);
    await expectRefused(await put(craft([good], [{ path: '/etc/a.txt', data: a }])), 422, /absolute/);
    await expectRefused(
      await put(craft([{ ...good, path: '../x' }], [{ path: '../x', data: a }])),
      422,
      /manifest is invalid/,
    );
    await expectRefused(
      await put(craft([good], [{ path: 'a.txt', type: 'SymbolicLink', linkpath: '/etc/passwd' }])),
      422,
      /SymbolicLink: only regular files/,
    );
    await expectRefused(
      await put(craft([good], [{ path: 'a.txt', data: Buffer.from('bbb') }])),
      422,
      /SHA-256 mismatch/,
    );
    await expectRefused(
      await put(
        craft(
          [good],
          [
            { path: 'a.txt', data: a },
            { path: 'b.txt', data: a },
          ],
        ),
      ),
      422,
      /not in the manifest/,
    );
    const other = { path: 'b.txt', size: 3, sha256: sha('zzz') };
    await expectRefused(
      await put(craft([good, other], [{ path: 'a.txt', data: a }])),
      422,
      /b.txt was not sent and the store does not have its bytes/,
    );
    await expectRefused(
      await put(
        craft(
          [good, other],
          [
            { path: 'b.txt', data: Buffer.from('zzz') },
            { path: 'a.txt', data: a },
          ],
        ),
      ),
      422,
      /a.txt" is not in the manifest, or out of its order/,
    );
    await expectRefused(
      await put(craft([good], [{ path: 'a.txt', data: Buffer.alloc(4000) }], { truncate: true })),
      422,
      /tar says 4000 bytes/,
    );
    const ask = (body: string, token = c.tokens.worker) =>
      fetch(`${c.url}/blobs/missing`, { method: 'POST', body, headers: { authorization: `Bearer ${token}` } });
    await expectRefused(await ask('{"blobs": [{"sha256": "nope", "size": 1}]}'), 400, /64 lower-case hex/);
    await expectRefused(await ask('{"sha256": []}'), 400, /expected \{"blobs"/);
    await expectRefused(await ask('not json'), 400, /not JSON/);
    await expectRefused(await ask('{"blobs": []}', c.tokens.read), 403, /worker or admin token/);
    await expectRefused(await put(Buffer.from('not a frame at all')), 422, /manifest/);
    await expectRefused(await put(craft([good], [{ path: 'a.txt', data: a }]), 'bld_nope'), 401, /valid token/);
    await expectRefused(
      await put(craft([good], [{ path: 'a.txt', data: a }]), c.tokens.read),
      403,
      /worker or admin token/,
    );
    await expectRefused(
      await put(craft([good], [{ path: 'a.txt', data: a }]), holderToken, `${c.url}/artifacts/${run.id}/9`),
      409,
      /not running/,
    );
    // only whole, verified files ever reach the store (a refused transfer may leave some,
    // unreferenced until the next vacuum); nothing half-written, nothing in staging
    const blobDir = join(c.dataDir, 'artifacts', 'blobs');
    for (const b of blobs(c)) expect(sha(readFileSync(join(blobDir, b.slice(0, 2), b)))).toBe(b);
    expect(blobs(c).length).toBeLessThanOrEqual(before + 2);
    expect(readdirSync(join(c.dataDir, 'artifacts', 'tmp'))).toEqual([]);
    expect(JSON.parse((await c.client(['artifacts', 'slow/1', '--json'])).stdout).files).toEqual([]);

    // and the server still takes a good one
    const ok = await put(craft([good], [{ path: 'a.txt', data: a }]));
    expect(await ok.json()).toMatchObject({ ok: true, files: 1, bytes: 3 });
    await c.client(['cancel', 'slow/1']);
    holder.close();
  });

  it('uploads files built elsewhere as a run of the job', async () => {
    const src = join(c.dir, 'built');
    mkdirSync(join(src, 'docs'), { recursive: true });
    writeFileSync(join(src, 'tool.deb'), 'deb contents');
    writeFileSync(join(src, 'docs', 'README'), 'read me');
    await c.schedule('ext', 'true');
    const up = await c.client(['upload', 'ext', join(src, 'tool.deb'), join(src, 'docs')]);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout.trim()).toBe('ext#1');
    const run = await c.run('ext/1');
    expect(run.state).toBe('succeeded');
    expect(run.worker).toBe('upload');
    expect(run.trigger).toBe('upload');
    const files = JSON.parse((await c.client(['artifacts', 'ext/1', '--json'])).stdout).files;
    expect(files.map((f: { path: string }) => f.path)).toEqual(['docs/README', 'tool.deb']);

    // the same files again: a new run, and no byte travels
    const second = await c.client(['upload', 'ext', join(src, 'tool.deb'), join(src, 'docs'), '--json']);
    expect(JSON.parse(second.stdout)).toMatchObject({ ok: true, files: 2, sent: 0, stored: 0, number: 2 });

    // a transfer broken after its first file: the retry sends only the second
    const one = Buffer.from('first file, complete');
    const two = Buffer.alloc(100_000, 7);
    writeFileSync(join(src, 'one'), one);
    writeFileSync(join(src, 'two'), two);
    const broken = craft(
      [
        { path: 'one', size: one.length, sha256: sha(one) },
        { path: 'two', size: two.length, sha256: sha(two) },
      ],
      [
        { path: 'one', data: one },
        { path: 'two', data: two },
      ],
    ).subarray(0, 4096);
    const cut = await fetch(`${c.url}/upload/ext`, {
      method: 'PUT',
      body: broken,
      headers: { authorization: `Bearer ${c.tokens.admin}` },
    });
    expect(cut.status).toBe(422);
    const resumed = await c.client(['upload', 'ext', join(src, 'one'), join(src, 'two'), '--json']);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ ok: true, files: 2, sent: two.length, stored: 1 });

    const missing = await c.client(['upload', 'no-such-job', join(src, 'tool.deb')]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('no-such-job does not exist');
    const nofile = await c.client(['upload', 'ext', join(src, 'nope')]);
    expect(nofile.code).toBe(2);
    expect(nofile.stderr).toContain('no such file');
  });

  it('a download whose bytes do not match is refused and leaves no file', async () => {
    await c.schedule('corrupt', 'echo original > "$BUILDER_OUTPUT/f.txt"');
    expect((await c.client(['execute', 'corrupt', '--follow'])).code).toBe(0);
    const h = sha('original\n');
    writeFileSync(join(c.dataDir, 'artifacts', 'blobs', h.slice(0, 2), h), 'tampered\n');
    const dir = join(c.dir, 'dl-corrupt');
    const r = await c.client(['artifacts', 'corrupt/1', '--download', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('does not match its checksum');
    expect(existsSync(join(dir, 'f.txt'))).toBe(false);
    expect(existsSync(join(dir, 'f.txt.part'))).toBe(false);
  });
});

describe('artifacts in an S3 bucket (s3rver on loopback)', () => {
  let c: Cluster;
  let s3: S3Fixture;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'builder-s3-it-'));
    s3 = await startS3rver(dir);
    // the server process inherits the fixture's credentials from this environment
    c = await Cluster.start(['--artifacts', 's3://builder/runs', '--s3-endpoint', s3.endpoint]);
    c.startWorker('w1');
    await c.waitForWorkers('w1');
  });
  afterAll(async () => {
    await c?.stop();
    await s3?.close();
  });

  it('stores a run’s files in the bucket and serves them back verified', async () => {
    await c.schedule('s3job', 'seq 1 300000 > "$BUILDER_OUTPUT/n.txt"; echo hi > "$BUILDER_OUTPUT/hi.txt"');
    const r = await c.client(['execute', 's3job', '--follow']);
    expect(r.code, r.stderr).toBe(0);
    const numbers = Array.from({ length: 300000 }, (_, i) => `${i + 1}\n`).join('');
    const files = JSON.parse((await c.client(['artifacts', 's3job/1', '--json'])).stdout).files;
    expect(files).toContainEqual({ path: 'n.txt', size: numbers.length, sha256: sha(numbers) });
    expect(existsSync(join(c.dataDir, 'artifacts', 'blobs'))).toBe(false);
    const dir = join(c.dir, 'dl');
    expect((await c.client(['artifacts', 's3job/1', '--download', dir])).code).toBe(0);
    expect(readFileSync(join(dir, 'n.txt'), 'utf8')).toBe(numbers);
    const ranged = await fetch(`${c.url}/job/s3job/run/1/artifacts/n.txt`, { headers: { range: 'bytes=2-5' } });
    expect(ranged.status).toBe(206);
    expect(await ranged.text()).toBe('2\n3\n');
  });
});
