import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { BlobDamagedError, BlobNotFoundError, type BlobInfo, type BlobStore } from './blob-store.ts';
import { LocalBlobStore } from './local-blobs.ts';
import { startS3rver, type S3Fixture } from '../test-support/s3rver.ts';
import { openBlobStore, parseS3Spec } from './open.ts';
import { MULTIPART_THRESHOLD, S3BlobStore } from './s3-blobs.ts';

const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function hashStream(stream: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of stream) h.update(c as Buffer);
  return h.digest('hex');
}

async function listed(store: BlobStore): Promise<BlobInfo[]> {
  const out: BlobInfo[] = [];
  for await (const b of store.list()) out.push(b);
  return out;
}

async function collect(store: BlobStore): Promise<string[]> {
  const out: string[] = [];
  for await (const b of store.list()) out.push(b.sha256);
  return out;
}

let root: string;
let s3: S3Fixture | undefined;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'builder-blobs-'));
  s3 = await startS3rver(root);
});

afterAll(async () => {
  await s3?.close();
  rmSync(root, { recursive: true, force: true });
});

let seq = 0;
const stores: [string, () => BlobStore][] = [
  ['LocalBlobStore', () => new LocalBlobStore(join(root, `local-${++seq}`))],
  [
    'S3BlobStore',
    // a fresh prefix per test keeps list() to what that test stored; pages of 2 exercise paging
    () =>
      new S3BlobStore({
        bucket: 'builder',
        prefix: `t${++seq}/blobs`,
        endpoint: s3!.endpoint,
        region: 'us-east-1',
        listPageSize: 2,
      }),
  ],
];

describe.each(stores)('%s', (_name, make) => {
  let store: BlobStore;
  let tmp: string;
  const stage = (data: Buffer | string) => {
    const file = join(tmp, `staged-${++seq}`);
    writeFileSync(file, data);
    return file;
  };

  beforeEach(() => {
    store = make();
    tmp = join(root, `tmp-${++seq}`);
    mkdirSync(tmp);
    return () => (store as Partial<S3BlobStore>).destroy?.();
  });

  it('stores, finds, reads (whole and a range), lists and deletes a blob', async () => {
    const data = Buffer.from('hello, artifacts\n');
    const h = sha(data);
    expect(await store.has(h, data.length)).toBe(false);
    const file = stage(data);
    expect(await store.put(h, file, data.length)).toBe(true);
    expect(existsSync(file)).toBe(false);
    expect(await store.has(h, data.length)).toBe(true);
    expect(await readAll(await store.open(h, data.length))).toEqual(data);
    expect((await readAll(await store.open(h, data.length, { start: 7, end: 15 }))).toString()).toBe('artifacts');
    const listed = [];
    for await (const b of store.list()) listed.push(b);
    expect(listed).toHaveLength(1);
    expect(listed[0]?.sha256).toBe(h);
    expect(Math.abs(listed[0]!.modifiedAt - Date.now())).toBeLessThan(60_000);
    await store.delete(h);
    expect(await store.has(h, data.length)).toBe(false);
    expect(await collect(store)).toEqual([]);
  });

  it('keeps one copy when the same blob is stored twice, and removes the second temp file', async () => {
    const data = randomBytes(1000);
    const h = sha(data);
    await store.put(h, stage(data), data.length);
    const second = stage(data);
    expect(await store.put(h, second, data.length)).toBe(false);
    expect(existsSync(second)).toBe(false);
    expect(await collect(store)).toEqual([h]);
    expect(await readAll(await store.open(h, data.length))).toEqual(data);
  });

  /** Overwrite a stored blob with other bytes behind the store's back (a disk fault, a hand). */
  const damage = async (h: string, bytes: Buffer) => {
    if (store instanceof S3BlobStore) {
      const Key = `${store.description.slice('s3://builder/'.length)}/${h.slice(0, 2)}/${h}`;
      await (await store.client()).send(new PutObjectCommand({ Bucket: 'builder', Key, Body: bytes }));
    } else writeFileSync(join(store.description.slice('local '.length), h.slice(0, 2), h), bytes);
  };
  const exists = async (where: string) => {
    if (!where.startsWith('s3://')) return existsSync(where);
    const Key = where.slice('s3://builder/'.length);
    try {
      await (await (store as S3BlobStore).client()).send(new HeadObjectCommand({ Bucket: 'builder', Key }));
      return true;
    } catch {
      return false;
    }
  };

  it('counts a blob cut short as missing, never serves it, and replaces it on the next put', async () => {
    const data = randomBytes(1000);
    const h = sha(data);
    await store.put(h, stage(data), data.length);
    await damage(h, data.subarray(0, 400));
    expect(await store.has(h, data.length)).toBe(false);
    await expect(store.open(h, data.length)).rejects.toBeInstanceOf(BlobDamagedError);
    await expect(store.open(h, data.length, { start: 0, end: 9 })).rejects.toMatchObject({ size: 400, expected: 1000 });
    expect(await store.put(h, stage(data), data.length)).toBe(true);
    expect(await store.has(h, data.length)).toBe(true);
    expect(await readAll(await store.open(h, data.length))).toEqual(data);
  });

  it('refuses a staged file of another size than announced and stores nothing', async () => {
    const data = randomBytes(1000);
    const h = sha(data);
    await expect(store.put(h, stage(data.subarray(0, 10)), data.length)).rejects.toThrow(/10 bytes on disk, 1000/);
    expect(await store.has(h, data.length)).toBe(false);
    expect(await collect(store)).toEqual([]);
  });

  it('quarantines a damaged blob out of reach, unless a good copy replaced it meanwhile', async () => {
    const data = randomBytes(1000);
    const h = sha(data);
    await store.put(h, stage(data), data.length);
    await damage(h, data.subarray(0, 400));
    const [bad] = await listed(store);
    await store.put(h, stage(data), data.length); // a good copy arrives before verify moves the bad one
    expect(await store.quarantine(bad!)).toBeUndefined();
    expect(await store.has(h, data.length)).toBe(true);

    await damage(h, data.subarray(0, 400));
    const [again] = await listed(store);
    const where = await store.quarantine(again!);
    expect(where).toMatch(new RegExp(`/quarantine/${h}\\.\\d{8}T\\d{9}Z$`));
    expect(await exists(where!)).toBe(true);
    expect(await collect(store)).toEqual([]);
    expect(await store.has(h, data.length)).toBe(false);
    await expect(store.open(h, data.length)).rejects.toBeInstanceOf(BlobNotFoundError);
    expect(await store.put(h, stage(data), data.length)).toBe(true);
    expect(await readAll(await store.open(h, data.length))).toEqual(data);
  });

  it('lists many blobs across pages, sorted by fan-out', async () => {
    const hashes: string[] = [];
    for (let i = 0; i < 5; i++) {
      const data = `blob ${i}`;
      hashes.push(sha(data));
      await store.put(sha(data), stage(data), data.length);
    }
    const send = store instanceof S3BlobStore ? vi.spyOn(await store.client(), 'send') : undefined;
    expect((await collect(store)).sort()).toEqual(hashes.sort());
    // 5 keys in pages of 2
    if (send) expect(send.mock.calls.filter(([c]) => c instanceof ListObjectsV2Command)).toHaveLength(3);
    send?.mockRestore();
  });

  it('rejects a missing blob with BlobNotFoundError', async () => {
    const h = sha('never stored');
    await expect(store.open(h, 1)).rejects.toBeInstanceOf(BlobNotFoundError);
    await expect(store.open(h, 1, { start: 0, end: 1 })).rejects.toMatchObject({ sha256: h });
    await store.delete(h); // deleting what is not there is not an error
  });

  it(`stores a file over ${MULTIPART_THRESHOLD / 2 ** 20} MiB and reads back the same bytes`, async () => {
    // written and hashed in 1 MiB chunks: the test holds no more than the store would
    const size = MULTIPART_THRESHOLD + 3 * 2 ** 20 + 12345;
    const file = join(tmp, 'big');
    const hash = createHash('sha256');
    const out = createWriteStream(file);
    for (let left = size; left > 0;) {
      const chunk = randomBytes(Math.min(left, 2 ** 20));
      hash.update(chunk);
      left -= chunk.length;
      if (!out.write(chunk)) await new Promise((ok) => out.once('drain', ok));
    }
    await new Promise((ok) => out.end(ok));
    const h = hash.digest('hex');
    const send = store instanceof S3BlobStore ? vi.spyOn(await store.client(), 'send') : undefined;
    await store.put(h, file, size);
    expect(existsSync(file)).toBe(false);
    if (send) {
      const cmds = send.mock.calls.map(([cmd]) => cmd);
      // 68 MiB in 16 MiB parts: 5 parts, and never a single PUT
      const parts = cmds.filter((c) => c instanceof UploadPartCommand);
      expect(parts).toHaveLength(5);
      // each part with its SHA-256, for the store to check
      for (const p of parts) expect(p.input.ChecksumSHA256).toMatch(/^[A-Za-z0-9+/]{43}=$/);
      expect(cmds.find((c) => c instanceof CreateMultipartUploadCommand)?.input.ChecksumAlgorithm).toBe('SHA256');
      expect(cmds.filter((c) => c instanceof PutObjectCommand)).toHaveLength(0);
      send.mockRestore();
    }
    expect(await hashStream(await store.open(h, size))).toBe(h);
    const tail = await readAll(await store.open(h, size, { start: size - 10, end: size - 1 }));
    expect(tail).toHaveLength(10);
  });
});

describe('S3BlobStore', () => {
  it('sends the SHA-256 with the object, so the store checks what it received', async () => {
    const store = new S3BlobStore({ bucket: 'builder', prefix: 'sum', endpoint: s3!.endpoint, region: 'us-east-1' });
    try {
      const data = Buffer.from('checked by the store');
      const file = join(root, 'sum');
      writeFileSync(file, data);
      const send = vi.spyOn(await store.client(), 'send');
      await store.put(sha(data), file, data.length);
      const put = send.mock.calls.map(([c]) => c).find((c) => c instanceof PutObjectCommand);
      send.mockRestore();
      expect(put?.input.ChecksumSHA256).toBe(createHash('sha256').update(data).digest('base64'));
    } finally {
      store.destroy();
    }
  });

  it('skips objects under the prefix that are not blobs', async () => {
    const store = new S3BlobStore({ bucket: 'builder', prefix: 'mixed', endpoint: s3!.endpoint, region: 'us-east-1' });
    try {
      const h = sha('real');
      const client = await store.client();
      const put = (Key: string) => client.send(new PutObjectCommand({ Bucket: 'builder', Key, Body: 'x' }));
      await put(`mixed/${h.slice(0, 2)}/${h}`);
      await put('mixed/README');
      await put(`mixed/zz/${h}`); // wrong fan-out
      await put(`mixed/${h.slice(0, 2)}/${h}.tmp`);
      await put(`mixedup/${h.slice(0, 2)}/${h}`); // another prefix that merely starts the same
      expect(await collect(store)).toEqual([h]);
    } finally {
      store.destroy();
    }
  });

  it('aborts a multipart upload whose file does not read back as its SHA-256, storing nothing', async () => {
    const store = new S3BlobStore({ bucket: 'builder', prefix: 'abort', endpoint: s3!.endpoint, region: 'us-east-1' });
    try {
      // the right size, other bytes: only the whole-file hash taken while the parts go up can tell
      const file = join(root, 'zeros');
      writeFileSync(file, '');
      truncateSync(file, MULTIPART_THRESHOLD + 1);
      const h = sha('whatever');
      const send = vi.spyOn(await store.client(), 'send');
      await expect(store.put(h, file, MULTIPART_THRESHOLD + 1)).rejects.toThrow(
        /reads back as [0-9a-f]{64}: not stored/,
      );
      expect(send.mock.calls.some(([c]) => c instanceof AbortMultipartUploadCommand)).toBe(true);
      send.mockRestore();
      expect(await store.has(h, MULTIPART_THRESHOLD + 1)).toBe(false);
    } finally {
      store.destroy();
    }
  });
});

describe('openBlobStore / parseS3Spec', () => {
  it('parses s3://bucket/prefix with and without a prefix', () => {
    expect(parseS3Spec('s3://builder')).toEqual({ bucket: 'builder', prefix: '' });
    expect(parseS3Spec('s3://builder/')).toEqual({ bucket: 'builder', prefix: '' });
    expect(parseS3Spec('s3://my.bucket-1/ci/artifacts/')).toEqual({ bucket: 'my.bucket-1', prefix: 'ci/artifacts' });
  });

  it('names the spec when it is malformed', () => {
    expect(() => parseS3Spec('s3://')).toThrow(/"s3:\/\/".*not a valid S3 bucket name/);
    expect(() => parseS3Spec('s3://Upper_Case/x')).toThrow(/"Upper_Case" is not a valid S3 bucket name/);
    expect(() => parseS3Spec('s3://builder/a//b')).toThrow(/"s3:\/\/builder\/a\/\/b".*empty/);
    expect(() => openBlobStore(root, { store: 'gs://x/y', maxRunBytes: 1 })).toThrow(/s3:\/\/BUCKET\/PREFIX/);
    expect(() => openBlobStore(root, { store: 's3://b-1', s3Endpoint: 'localhost:9000', maxRunBytes: 1 })).toThrow(
      /--s3-endpoint must be an http\(s\) URL/,
    );
  });

  it('opens an S3 store described by its spec', () => {
    const store = openBlobStore(root, { store: 's3://builder/ci/', s3Endpoint: s3!.endpoint, maxRunBytes: 1 });
    expect(store).toBeInstanceOf(S3BlobStore);
    expect(store.description).toBe('s3://builder/ci');
    (store as S3BlobStore).destroy();
  });
});
