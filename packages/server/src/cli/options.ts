import { type Command, Option } from 'commander';
import type { BlobStore } from '../artifacts/blob-store.ts';
import { openBlobStore } from '../artifacts/open.ts';
import { DEFAULTS } from '../options.ts';

export const dataDirOption = () =>
  new Option('--data-dir <dir>', 'where the database, consoles and artifacts live')
    .env('BUILDER_DATA_DIR')
    .default(DEFAULTS.dataDir);

/** Where the artifact bytes are: the same three options for the server and every maintenance command. */
export const storeOptions = (): Option[] => [
  new Option(
    '--artifacts <store>',
    'artifact storage: a directory or s3://BUCKET/PREFIX (default: DATA/artifacts/blobs)',
  ),
  new Option('--s3-endpoint <url>', 'S3-compatible endpoint for s3:// storage (credentials: AWS_* environment)'),
  new Option('--s3-region <region>', 'S3 region').default(DEFAULTS.s3Region),
];

export function addStoreOptions(cmd: Command): Command {
  for (const o of storeOptions()) cmd.addOption(o);
  return cmd;
}

export interface StoreFlags {
  dataDir: string;
  artifacts?: string;
  s3Endpoint?: string;
  s3Region: string;
}

/** The store a maintenance command works on; throws on a malformed spec (a usage error). */
export function openStoreFromFlags(o: StoreFlags): BlobStore {
  return openBlobStore(o.dataDir, {
    store: o.artifacts,
    s3Endpoint: o.s3Endpoint,
    s3Region: o.s3Region,
    maxRunBytes: 0,
  });
}

/** Close an S3 client's idle sockets, so the command can exit. */
export function closeStore(blobs: BlobStore | undefined): void {
  (blobs as { destroy?: () => void } | undefined)?.destroy?.();
}
