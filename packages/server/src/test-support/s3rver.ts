import crypto from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { vi } from 'vitest';

/** A real S3-compatible server (s3rver) on loopback with a bucket `builder`, for tests. */
export interface S3Fixture {
  endpoint: string;
  /** Write an object of bucket `builder` behind the store's back (a disk fault, a hand). */
  put(key: string, body: Buffer | string): Promise<void>;
  /** Stops the server and restores the environment and crypto. */
  close(): Promise<void>;
}

/**
 * s3rver encrypts ListObjectsV2 continuation tokens with single DES, which OpenSSL 3 only has in
 * its legacy provider. Triple DES with one key used thrice is the same cipher, and is still there.
 */
function lendS3rverDes(): void {
  const { createCipheriv, createDecipheriv } = crypto;
  const triple = (alg: string, key: crypto.CipherKey) =>
    alg === 'des' ? (['des-ede3-cbc', Buffer.concat([key, key, key] as Buffer[])] as const) : ([alg, key] as const);
  vi.spyOn(crypto, 'createCipheriv').mockImplementation(((alg: string, key: Buffer, iv: Buffer) =>
    createCipheriv(...triple(alg, key), iv)) as typeof createCipheriv);
  vi.spyOn(crypto, 'createDecipheriv').mockImplementation(((alg: string, key: Buffer, iv: Buffer) =>
    createDecipheriv(...triple(alg, key), iv)) as typeof createDecipheriv);
}

/** Start s3rver storing under `dir`; its fixed credentials go through the SDK's default chain. */
export async function startS3rver(dir: string): Promise<S3Fixture> {
  lendS3rverDes();
  const directory = join(dir, 's3rver');
  mkdirSync(directory, { recursive: true });
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory,
    configureBuckets: [{ name: 'builder' }],
  });
  const { port } = await server.run();
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    async put(Key, Body) {
      const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true });
      try {
        await client.send(new PutObjectCommand({ Bucket: 'builder', Key, Body }));
      } finally {
        client.destroy();
      }
    },
    async close() {
      await server.close();
      vi.restoreAllMocks();
      if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
      else process.env.AWS_ACCESS_KEY_ID = saved.id;
      if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
      else process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    },
  };
}
