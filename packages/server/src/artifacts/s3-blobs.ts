import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open as openFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { CompletedPart, S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import {
  BlobDamagedError,
  BlobNotFoundError,
  blobKey,
  quarantineName,
  type BlobInfo,
  type BlobStore,
} from './blob-store.ts';

type Sdk = typeof import('@aws-sdk/client-s3');

const MiB = 1024 * 1024;
/** Above this a blob goes up in parts: one PUT of gigabytes cannot be resumed and S3 caps it at 5 GiB. */
export const MULTIPART_THRESHOLD = 64 * MiB;
/** One part is read into memory at a time; 16 MiB × 10,000 parts allowed by S3 = 156 GiB per blob. */
export const PART_SIZE = 16 * MiB;
/** S3 copies an object in one request only up to this size. */
const MAX_COPY = 5 * 1024 * MiB;

export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix without leading or trailing slash; '' for the bucket root. */
  prefix: string;
  /** An S3-compatible server (MinIO, Garage, s3rver …); absent: AWS. */
  endpoint?: string;
  region: string;
  /** Keys per ListObjectsV2 page (S3's maximum is 1000); tests lower it to cover paging. */
  listPageSize?: number;
}

/**
 * Blobs as objects `PREFIX/ab/abcdef…` in a bucket. Credentials come from the SDK's default chain
 * (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, instance roles).
 */
export class S3BlobStore implements BlobStore {
  readonly description: string;
  readonly #config: S3ClientConfig;
  /** Loaded on first use: the SDK adds a third of a second to every start of a local-store server. */
  #sdk: Promise<{ sdk: Sdk; client: S3Client }> | undefined;
  #loaded: S3Client | undefined;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #pageSize: number;

  constructor(opts: S3BlobStoreOptions) {
    this.#bucket = opts.bucket;
    this.#prefix = opts.prefix;
    this.#pageSize = opts.listPageSize ?? 1000;
    this.description = `s3://${opts.bucket}${opts.prefix ? `/${opts.prefix}` : ''}`;
    this.#config = {
      region: opts.region,
      ...(opts.endpoint !== undefined
        ? {
            endpoint: opts.endpoint,
            // self-hosted servers rarely have a DNS name per bucket
            forcePathStyle: true,
            // many S3-compatible servers reject the SDK's default aws-chunked checksum trailer; put
            // sends the SHA-256 it already has as a plain header instead
            requestChecksumCalculation: 'WHEN_REQUIRED',
            responseChecksumValidation: 'WHEN_REQUIRED',
          }
        : {}),
    };
  }

  #s3(): Promise<{ sdk: Sdk; client: S3Client }> {
    this.#sdk ??= import('@aws-sdk/client-s3').then((sdk) => {
      this.#loaded = new sdk.S3Client(this.#config);
      return { sdk, client: this.#loaded };
    });
    return this.#sdk;
  }

  /** The SDK client, for tests that watch the requests. */
  async client(): Promise<S3Client> {
    return (await this.#s3()).client;
  }

  #key(sha256: string): string {
    const key = blobKey(sha256);
    return this.#prefix ? `${this.#prefix}/${key}` : key;
  }

  async has(sha256: string, size: number): Promise<boolean> {
    const { sdk, client } = await this.#s3();
    try {
      const head = await client.send(new sdk.HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(sha256) }));
      return head.ContentLength === size;
    } catch (err) {
      // anything but "not there" (network, credentials) must not read as absent
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async put(sha256: string, file: string, size: number): Promise<boolean> {
    const key = this.#key(sha256);
    // objects are named by content: one of the right size is already this file
    const existed = await this.has(sha256, size);
    if (!existed) {
      const onDisk = (await stat(file)).size;
      if (onDisk !== size) throw new Error(`staged blob ${sha256} has ${onDisk} bytes on disk, ${size} expected`);
      const { sdk, client } = await this.#s3();
      if (size > MULTIPART_THRESHOLD) await this.#putMultipart(sdk, client, key, file, size, sha256);
      else {
        // the store checks the bytes it receives against the SHA-256 and refuses the PUT otherwise
        await client.send(
          new sdk.PutObjectCommand({
            Bucket: this.#bucket,
            Key: key,
            Body: createReadStream(file),
            ContentLength: size,
            ChecksumSHA256: base64(sha256),
          }),
        );
      }
    }
    await rm(file, { force: true });
    return !existed;
  }

  /**
   * S3 takes no whole-object SHA-256 for a multipart upload, only one per part: each part is checked
   * by the store, and the whole file by us as its parts are read, before the upload is completed.
   */
  async #putMultipart(sdk: Sdk, client: S3Client, key: string, file: string, size: number, sha256: string) {
    const { UploadId } = await client.send(
      new sdk.CreateMultipartUploadCommand({ Bucket: this.#bucket, Key: key, ChecksumAlgorithm: 'SHA256' }),
    );
    if (!UploadId) throw new Error(`S3 gave no upload id for ${key}`);
    try {
      const parts: CompletedPart[] = [];
      const whole = createHash('sha256');
      const fh = await openFile(file, 'r');
      try {
        // one buffer for every part: the SDK is done with it once UploadPart resolves
        const buf = Buffer.allocUnsafe(Math.min(PART_SIZE, size));
        for (let pos = 0, n = 1; pos < size; pos += PART_SIZE, n++) {
          const len = Math.min(PART_SIZE, size - pos);
          await readExactly(fh, buf, len, pos, file);
          const part = buf.subarray(0, len);
          whole.update(part);
          const checksum = createHash('sha256').update(part).digest('base64');
          const { ETag } = await client.send(
            new sdk.UploadPartCommand({
              Bucket: this.#bucket,
              Key: key,
              UploadId,
              PartNumber: n,
              Body: part,
              ContentLength: len,
              ChecksumSHA256: checksum,
            }),
          );
          parts.push({ ETag, PartNumber: n, ChecksumSHA256: checksum });
        }
      } finally {
        await fh.close();
      }
      const read = whole.digest('hex');
      if (read !== sha256) throw new Error(`staged blob ${sha256} reads back as ${read}: not stored`);
      await client.send(
        new sdk.CompleteMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: key,
          UploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
    } catch (err) {
      // parts of an abandoned upload are billed until aborted; the original error is what matters
      await client
        .send(new sdk.AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: key, UploadId }))
        .catch(() => undefined);
      throw err;
    }
  }

  async open(sha256: string, size: number, range?: { start: number; end: number }): Promise<Readable> {
    const { sdk, client } = await this.#s3();
    let out;
    try {
      out = await client.send(
        new sdk.GetObjectCommand({
          Bucket: this.#bucket,
          Key: this.#key(sha256),
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      );
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(sha256);
      throw err;
    }
    if (!(out.Body instanceof Readable)) throw new Error(`S3 returned no stream for blob ${sha256}`);
    // a range answer names the object's whole size after the slash
    const total = range ? Number(/\/(\d+)$/.exec(out.ContentRange ?? '')?.[1] ?? NaN) : out.ContentLength;
    if (total !== size) {
      out.Body.destroy();
      throw new BlobDamagedError(sha256, total ?? NaN, size);
    }
    return out.Body;
  }

  async delete(sha256: string): Promise<void> {
    const { sdk, client } = await this.#s3();
    await client.send(new sdk.DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#key(sha256) }));
  }

  async *list(): AsyncIterable<BlobInfo> {
    const { sdk, client } = await this.#s3();
    const base = this.#prefix ? `${this.#prefix}/` : '';
    let token: string | undefined;
    do {
      const page = await client.send(
        new sdk.ListObjectsV2Command({
          Bucket: this.#bucket,
          Prefix: base || undefined,
          ContinuationToken: token,
          MaxKeys: this.#pageSize,
        }),
      );
      for (const obj of page.Contents ?? []) {
        const m = /^([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(obj.Key?.slice(base.length) ?? '');
        // foreign keys under the prefix are not ours to collect; without a time a blob could be a
        // fresh upload, so it is left alone too
        if (!m?.[2] || !m[2].startsWith(m[1]!) || !obj.LastModified) continue;
        yield { sha256: m[2], size: obj.Size ?? 0, modifiedAt: obj.LastModified.getTime(), version: obj.ETag ?? '' };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Copied to `PREFIX/quarantine/…` only if still the listed object (its ETag), then deleted. */
  async quarantine(blob: BlobInfo): Promise<string | undefined> {
    if (blob.size > MAX_COPY) {
      throw new Error(`blob ${blob.sha256} is over 5 GiB, more than S3 copies in one request: remove it by hand`);
    }
    const { sdk, client } = await this.#s3();
    const key = this.#key(blob.sha256);
    const name = quarantineName(blob.sha256);
    const to = this.#prefix ? `${this.#prefix}/quarantine/${name}` : `quarantine/${name}`;
    try {
      await client.send(
        new sdk.CopyObjectCommand({
          Bucket: this.#bucket,
          Key: to,
          CopySource: encodeURI(`${this.#bucket}/${key}`),
          CopySourceIfMatch: blob.version,
        }),
      );
      // S3 has no conditional rename: between this look and the delete lies a request's time
      const head = await client.send(new sdk.HeadObjectCommand({ Bucket: this.#bucket, Key: key }));
      if (head.ETag !== blob.version) return undefined;
    } catch (err) {
      if (isNotFound(err) || statusOf(err) === 412) return undefined; // replaced or deleted meanwhile
      throw err;
    }
    await client.send(new sdk.DeleteObjectCommand({ Bucket: this.#bucket, Key: key }));
    return `s3://${this.#bucket}/${to}`;
  }

  /** Close the client's idle connections. */
  destroy(): void {
    this.#loaded?.destroy();
  }
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string }).name;
  return name === 'NotFound' || name === 'NoSuchKey' || statusOf(err) === 404;
}

/** S3's checksum headers carry the digest in base64, ours is hex. */
function base64(sha256: string): string {
  return Buffer.from(sha256, 'hex').toString('base64');
}

async function readExactly(fh: FileHandle, buf: Buffer, len: number, pos: number, file: string): Promise<void> {
  for (let off = 0; off < len;) {
    const { bytesRead } = await fh.read(buf, off, len - off, pos + off);
    if (bytesRead === 0) throw new Error(`${file} ended at ${pos + off} bytes, before the size it was stored with`);
    off += bytesRead;
  }
}
