import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ARTIFACT_LIMITS } from '@builder/protocol';
import type { BlobStore } from './blob-store.ts';
import { LocalBlobStore } from './local-blobs.ts';

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

/** The blob store the options name; local stores are created if missing. */
export function openBlobStore(dataDir: string, opts: ArtifactOptions): BlobStore {
  const spec = opts.store;
  if (spec === undefined || spec === '') return new LocalBlobStore(join(dataDir, 'artifacts', 'blobs'));
  if (spec.startsWith('s3://')) throw new Error('S3 artifact storage is not available yet');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec))
    throw new Error(`--artifacts must be s3://BUCKET/PREFIX or a directory, got "${spec}"`);
  return new LocalBlobStore(spec);
}

/** The staging dir for transfers, emptied at start: whatever is there was never verified. */
export function resetArtifactTmp(dataDir: string): string {
  const dir = join(dataDir, 'artifacts', 'tmp');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}
