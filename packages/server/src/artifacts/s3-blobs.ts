import { createReadStream } from 'node:fs';
import { open as openFile, rm, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { CompletedPart, S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { BlobNotFoundError, blobKey, type BlobInfo, type BlobStore } from './blob-store.ts';

type Sdk = typeof import('@aws-sdk/client-s3');

const MiB = 1024 * 1024;
/** Above this a blob goes up in parts: one PUT of gigabytes cannot be resumed and S3 caps it at 5 GiB. */
export const MULTIPART_THRESHOLD = 64 * MiB;
/** One part is read into memory at a time; 16 MiB × 10,000 parts allowed by S3 = 156 GiB per blob. */
export const PART_SIZE = 16 * MiB;

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
            // many S3-compatible servers reject the SDK's default aws-chunked checksum trailer; the
            // bytes were SHA-256-verified before they reach the store, so nothing is lost
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

  async has(sha256: string): Promise<boolean> {
    const { sdk, client } = await this.#s3();
    try {
      await client.send(new sdk.HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(sha256) }));
      return true;
    } catch (err) {
      // anything but "not there" (network, credentials) must not read as absent
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async put(sha256: string, file: string, size: number): Promise<void> {
    const key = this.#key(sha256);
    // objects are immutable and named by content: an existing one is already this file
    if (!(await this.has(sha256))) {
      const { sdk, client } = await this.#s3();
      if (size > MULTIPART_THRESHOLD) await this.#putMultipart(sdk, client, key, file, size);
      else {
        await client.send(
          new sdk.PutObjectCommand({
            Bucket: this.#bucket,
            Key: key,
            Body: createReadStream(file),
            ContentLength: size,
          }),
        );
      }
    }
    await rm(file, { force: true });
  }

  async #putMultipart(sdk: Sdk, client: S3Client, key: string, file: string, size: number): Promise<void> {
    const { UploadId } = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket: this.#bucket, Key: key }));
    if (!UploadId) throw new Error(`S3 gave no upload id for ${key}`);
    try {
      const parts: CompletedPart[] = [];
      const fh = await openFile(file, 'r');
      try {
        // one buffer for every part: the SDK is done with it once UploadPart resolves
        const buf = Buffer.allocUnsafe(Math.min(PART_SIZE, size));
        for (let pos = 0, n = 1; pos < size; pos += PART_SIZE, n++) {
          const len = Math.min(PART_SIZE, size - pos);
          await readExactly(fh, buf, len, pos, file);
          const { ETag } = await client.send(
            new sdk.UploadPartCommand({
              Bucket: this.#bucket,
              Key: key,
              UploadId,
              PartNumber: n,
              Body: buf.subarray(0, len),
              ContentLength: len,
            }),
          );
          parts.push({ ETag, PartNumber: n });
        }
      } finally {
        await fh.close();
      }
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

  async open(sha256: string, range?: { start: number; end: number }): Promise<Readable> {
    const { sdk, client } = await this.#s3();
    try {
      const out = await client.send(
        new sdk.GetObjectCommand({
          Bucket: this.#bucket,
          Key: this.#key(sha256),
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      );
      if (!(out.Body instanceof Readable)) throw new Error(`S3 returned no stream for blob ${sha256}`);
      return out.Body;
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(sha256);
      throw err;
    }
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
        yield { sha256: m[2], size: obj.Size ?? 0, modifiedAt: obj.LastModified.getTime() };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Close the client's idle connections. */
  destroy(): void {
    this.#loaded?.destroy();
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
}

async function readExactly(fh: FileHandle, buf: Buffer, len: number, pos: number, file: string): Promise<void> {
  for (let off = 0; off < len;) {
    const { bytesRead } = await fh.read(buf, off, len - off, pos + off);
    if (bytesRead === 0) throw new Error(`${file} ended at ${pos + off} bytes, before the size it was stored with`);
    off += bytesRead;
  }
}
