import type { Readable } from 'node:stream';
import { SHA256_PATTERN } from '@builder/protocol';

/**
 * Where artifact bytes live: one object per SHA-256, written once, shared by every run that
 * produced the same file. Two kinds: a local directory (the default) and an S3-compatible bucket.
 */
export interface BlobStore {
  /** For logs and `vacuum` output, e.g. `local /var/lib/builder/blobs` or `s3://bucket/prefix`. */
  readonly description: string;
  has(sha256: string): Promise<boolean>;
  /**
   * Store the verified file at `file` (a temp file the store may move or delete) as `sha256`.
   * Idempotent: storing a blob that exists leaves one copy.
   */
  put(sha256: string, file: string, size: number): Promise<void>;
  /** The blob's bytes, or bytes start..end inclusive; rejects with BlobNotFoundError when absent. */
  open(sha256: string, range?: { start: number; end: number }): Promise<Readable>;
  delete(sha256: string): Promise<void>;
  /** Every blob with its size and the time it was written (epoch ms), for garbage collection. */
  list(): AsyncIterable<BlobInfo>;
}

/** Where a blob lives inside a store: `ab/abcdef…` (a two-character fan-out keeps directories small). */
export function blobKey(sha256: string): string {
  if (!SHA256_PATTERN.test(sha256)) throw new Error(`not a SHA-256: ${sha256}`);
  return `${sha256.slice(0, 2)}/${sha256}`;
}

export interface BlobInfo {
  sha256: string;
  size: number;
  modifiedAt: number;
}

export class BlobNotFoundError extends Error {
  readonly sha256: string;
  constructor(sha256: string) {
    super(`artifact blob ${sha256} is not in the store`);
    this.name = 'BlobNotFoundError';
    this.sha256 = sha256;
  }
}
