import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ARTIFACT_LIMITS } from '@builder/protocol';
import type { BlobStore } from './blob-store.ts';
import { LocalBlobStore } from './local-blobs.ts';
import { S3BlobStore } from './s3-blobs.ts';

export interface ArtifactOptions {
  /** `s3://bucket/prefix`, or a directory; default DATA/artifacts/blobs. */
  store?: string;
  /** S3-compatible endpoint (MinIO, Garage, s3rver …); default: AWS. */
  s3Endpoint?: string;
  s3Region?: string;
  /** A run whose artifacts add up to more is refused. */
  maxRunBytes: number;
}

export const DEFAULT_ARTIFACT_OPTIONS: ArtifactOptions = { maxRunBytes: ARTIFACT_LIMITS.defaultMaxRunBytes };

/**
 * The blob store the options name; local stores are created if missing. Damaged blobs are set aside
 * in DATA/artifacts/quarantine, or DIR/quarantine for a store in a directory of its own (the same
 * file system, so that moving one is a rename).
 */
export function openBlobStore(dataDir: string, opts: ArtifactOptions): BlobStore {
  const spec = opts.store;
  if (spec === undefined || spec === '') {
    return new LocalBlobStore(join(dataDir, 'artifacts', 'blobs'), join(dataDir, 'artifacts', 'quarantine'));
  }
  if (spec.startsWith('s3://')) {
    const { bucket, prefix } = parseS3Spec(spec);
    return new S3BlobStore({
      bucket,
      prefix,
      endpoint: parseEndpoint(opts.s3Endpoint),
      region: opts.s3Region ?? 'us-east-1',
    });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec))
    throw new Error(`--artifacts must be s3://BUCKET/PREFIX or a directory, got "${spec}"`);
  return new LocalBlobStore(spec);
}

/** `s3://bucket/some/prefix` → bucket and prefix ('' when absent), slashes trimmed. */
export function parseS3Spec(spec: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(spec);
  const bucket = m?.[1] ?? '';
  // S3's bucket naming rules; a typo here would otherwise surface as a confusing signature error
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new Error(`--artifacts "${spec}": "${bucket}" is not a valid S3 bucket name (expected s3://BUCKET/PREFIX)`);
  }
  const prefix = (m?.[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix !== '' && prefix.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new Error(`--artifacts "${spec}": the prefix "${prefix}" has an empty, "." or ".." segment`);
  }
  return { bucket, prefix };
}

function parseEndpoint(url: string | undefined): string | undefined {
  if (url === undefined || url === '') return undefined;
  if (!/^https?:\/\/[^/]/.test(url)) throw new Error(`--s3-endpoint must be an http(s) URL, got "${url}"`);
  return url;
}

/** The staging dir for transfers, emptied at start: whatever is there was never verified. */
export function resetArtifactTmp(dataDir: string): string {
  const dir = join(dataDir, 'artifacts', 'tmp');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}
