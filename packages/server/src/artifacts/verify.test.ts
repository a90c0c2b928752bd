import { createHash } from 'node:crypto';
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../store/artifacts.ts';
import type { Db } from '../store/db.ts';
import type { BlobInfo } from './blob-store.ts';
import { LocalBlobStore } from './local-blobs.ts';
import { formatVerifyReport, verifyBlobs } from './verify.ts';
import { removeTempDb, tempDb } from '../test-support/temp-db.ts';

const sha = (data: string) => createHash('sha256').update(data).digest('hex');

/**
 * A real local store in which, at chosen moments of a verify pass, what a running server does
 * happens: vacuum deletes a blob right after it was listed, a transfer stores a good copy of a
 * damaged blob while it is being hashed.
 */
class BusyStore extends LocalBlobStore {
  deleteAfterListing = new Set<string>();
  repairBeforeQuarantine = new Map<string, () => Promise<void>>();

  override async *list(): AsyncIterable<BlobInfo> {
    for await (const b of super.list()) {
      if (this.deleteAfterListing.has(b.sha256)) await this.delete(b.sha256);
      yield b;
    }
  }

  override async quarantine(blob: BlobInfo): Promise<string | undefined> {
    await this.repairBeforeQuarantine.get(blob.sha256)?.();
    return super.quarantine(blob);
  }
}

describe('verifyBlobs next to a running server', () => {
  let dir: string;
  let db: Db;
  let store: BusyStore;
  let n = 0;
  const put = async (content: string) => {
    const file = join(dir, `staged-${++n}`);
    writeFileSync(file, content);
    await store.put(sha(content), file, content.length);
    return sha(content);
  };

  beforeEach(() => {
    ({ dir, db } = tempDb('builder-verify-'));
    store = new BusyStore(join(dir, 'blobs'), join(dir, 'quarantine'));
  });
  afterEach(() => {
    removeTempDb(dir, db);
  });

  it('skips a blob vacuum deletes meanwhile and leaves a good copy a transfer stores meanwhile', async () => {
    const intact = await put('intact');
    const collected = await put('collected by vacuum');
    const repaired = await put('damaged, then stored again');
    truncateSync(join(dir, 'blobs', repaired.slice(0, 2), repaired), 3);
    store.deleteAfterListing.add(collected);
    store.repairBeforeQuarantine.set(repaired, async () => void (await put('damaged, then stored again')));

    const report = await verifyBlobs({ blobs: store, artifacts: new ArtifactStore(db) });
    expect(report).toMatchObject({ checked: 2, damaged: [], unreadable: [], missing: [] });
    expect(await store.has(repaired, 'damaged, then stored again'.length)).toBe(true);
    expect(await store.has(intact, 'intact'.length)).toBe(true);
    expect(formatVerifyReport(report)).toBe(`checked 2 blobs (9 B) in local ${join(dir, 'blobs')}: 0 damaged\n`);
  });
});
