import type { Readable } from 'node:stream';
import { SHA256_PATTERN } from '@builder/protocol';

/**
 * Where artifact bytes live: one object per SHA-256, written once, shared by every run that
 * produced the same file. Two kinds: a local directory (the default) and an S3-compatible bucket.
 *
 * A blob is trusted only at the size it was stored with: a blob of another size (a write cut short
 * on a full disk, a file truncated by hand) counts as absent, so the next transfer of that file
 * sends and stores it again instead of deduplicating against it.
 */
export interface BlobStore {
  /** For logs and `vacuum` output, e.g. `local /var/lib/builder/blobs` or `s3://bucket/prefix`. */
  readonly description: string;
  /** Whether the store holds `sha256` at exactly `size` bytes. */
  has(sha256: string, size: number): Promise<boolean>;
  /**
   * Store the file at `file` (a temp file the store may move or delete) as `sha256`. The caller has
   * checked the SHA-256 of exactly the bytes it wrote there; the store makes them durable and checks
   * the size before the blob becomes visible, and rejects (storing nothing) when it differs.
   * Replaces a stored blob of another size. Resolves true when the blob was not in the store before.
   */
  put(sha256: string, file: string, size: number): Promise<boolean>;
  /**
   * The blob's bytes, or bytes start..end inclusive. Rejects with BlobNotFoundError when absent and
   * BlobDamagedError when it is not `size` bytes long: a reader never gets bytes that end early.
   */
  open(sha256: string, size: number, range?: { start: number; end: number }): Promise<Readable>;
  delete(sha256: string): Promise<void>;
  /** Every blob with its size and the time it was written (epoch ms), for garbage collection. */
  list(): AsyncIterable<BlobInfo>;
  /**
   * Move a damaged blob out of the store (kept aside for inspection, never served or deduplicated
   * against) if it is still the version `blob` describes: a good copy stored meanwhile stays.
   * Resolves to where it went, or undefined when it had been replaced or deleted meanwhile.
   */
  quarantine(blob: BlobInfo): Promise<string | undefined>;
}

/** Where a blob lives inside a store: `ab/abcdef…` (a two-character fan-out keeps directories small). */
export function blobKey(sha256: string): string {
  if (!SHA256_PATTERN.test(sha256)) throw new Error(`not a SHA-256: ${sha256}`);
  return `${sha256.slice(0, 2)}/${sha256}`;
}

/** The name a quarantined blob gets: its hash and when it was set aside, so repeats do not collide. */
export function quarantineName(sha256: string, now = new Date()): string {
  return `${sha256}.${now.toISOString().replace(/[-:.]/g, '')}`;
}

export interface BlobInfo {
  sha256: string;
  size: number;
  modifiedAt: number;
  /** Tells one stored copy from a later one under the same name (inode, ETag). */
  version: string;
}

export class BlobNotFoundError extends Error {
  readonly sha256: string;
  constructor(sha256: string, message = `artifact blob ${sha256} is not in the store`) {
    super(message);
    this.name = 'BlobNotFoundError';
    this.sha256 = sha256;
  }
}

/** The blob is there but not at the size its artifacts record: serving it would end early. */
export class BlobDamagedError extends BlobNotFoundError {
  readonly size: number;
  readonly expected: number;
  constructor(sha256: string, size: number, expected: number) {
    super(sha256, `artifact blob ${sha256} is damaged: ${size} bytes stored, ${expected} expected`);
    this.name = 'BlobDamagedError';
    this.size = size;
    this.expected = expected;
  }
}
