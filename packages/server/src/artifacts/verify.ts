import { createHash } from 'node:crypto';
import { formatBytes } from '@builder/protocol';
import type { ArtifactStore } from '../store/artifacts.ts';
import { BlobNotFoundError, type BlobInfo, type BlobStore } from './blob-store.ts';

/** A run file whose bytes were the damaged blob. */
export interface AffectedFile {
  job: string;
  number: number;
  platform: string;
  path: string;
}

export interface DamagedBlob {
  sha256: string;
  /** What is stored: its size and the SHA-256 its bytes have. */
  size: number;
  actualSha256: string;
  /** The size the runs' artifacts record; absent when no run refers to the blob. */
  expectedSize?: number;
  /** Where the blob was set aside; absent when moving it failed (see `error`). */
  quarantinedTo?: string;
  error?: string;
  /** Newest first, at most 100. */
  runs: AffectedFile[];
}

export interface VerifyReport {
  store: string;
  /** Blobs read and hashed whole, and their bytes. */
  checked: number;
  bytes: number;
  damaged: DamagedBlob[];
  /** Blobs that could not be read (I/O or store errors); left where they are. */
  unreadable: { sha256: string; error: string }[];
  /** Blobs runs refer to that the store lacks (quarantined before, lost): their downloads fail. */
  missing: { sha256: string; size: number; runs: AffectedFile[] }[];
}

export interface VerifyDeps {
  blobs: BlobStore;
  artifacts: ArtifactStore;
  signal?: AbortSignal;
}

/**
 * Re-hash every blob and quarantine those whose bytes are not their name: a quarantined blob is
 * neither served nor deduplicated against, so the next transfer of that file stores it again.
 *
 * Safe next to a running server: a blob being written is not in the store until its rename; one
 * that vacuum deletes meanwhile is skipped; one that a transfer replaces with a good copy while it
 * is hashed stays (quarantine moves only the version that was listed).
 */
export async function verifyBlobs(deps: VerifyDeps): Promise<VerifyReport> {
  const report: VerifyReport = {
    store: deps.blobs.description,
    checked: 0,
    bytes: 0,
    damaged: [],
    unreadable: [],
    missing: [],
  };
  const intact = new Set<string>();
  for await (const blob of deps.blobs.list()) {
    if (deps.signal?.aborted) return report;
    let read: { sha256: string; size: number };
    try {
      read = await hashBlob(deps.blobs, blob);
    } catch (err) {
      // gone (vacuum) or of another size than listed (replaced by a transfer) since it was listed
      if (err instanceof BlobNotFoundError) continue;
      report.unreadable.push({ sha256: blob.sha256, error: (err as Error).message });
      continue;
    }
    report.checked++;
    report.bytes += read.size;
    if (read.sha256 === blob.sha256 && read.size === blob.size) {
      intact.add(blob.sha256);
      continue;
    }
    const damaged = await setAside(deps, blob, read);
    if (damaged) report.damaged.push(damaged);
  }
  const damaged = new Set(report.damaged.map((d) => d.sha256));
  // gathered first: the connection is busy while a statement iterates, and awaits must not hold it
  const candidates: { sha256: string; size: number }[] = [];
  for (const b of deps.artifacts.referencedBlobs()) {
    if (!intact.has(b.sha256) && !damaged.has(b.sha256)) candidates.push(b);
  }
  for (const { sha256, size } of candidates) {
    if (deps.signal?.aborted) break;
    try {
      // asked again: a transfer may have stored it after the listing went past it
      if (await deps.blobs.has(sha256, size)) continue;
    } catch (err) {
      report.unreadable.push({ sha256, error: (err as Error).message });
      continue;
    }
    report.missing.push({ sha256, size, runs: affected(deps.artifacts, sha256) });
  }
  return report;
}

function affected(artifacts: ArtifactStore, sha256: string): AffectedFile[] {
  return artifacts.withSha(sha256).map((o) => ({ job: o.job, number: o.number, platform: o.platform, path: o.path }));
}

async function hashBlob(blobs: BlobStore, blob: BlobInfo): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of await blobs.open(blob.sha256, blob.size)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

async function setAside(
  deps: VerifyDeps,
  blob: BlobInfo,
  read: { sha256: string; size: number },
): Promise<DamagedBlob | undefined> {
  let quarantinedTo: string | undefined;
  let error: string | undefined;
  try {
    quarantinedTo = await deps.blobs.quarantine(blob);
    // replaced by a good copy, or deleted, while it was hashed: nothing damaged is left to report
    if (quarantinedTo === undefined) return undefined;
  } catch (err) {
    error = `could not quarantine it: ${(err as Error).message}`;
  }
  const expectedSize = deps.artifacts.withSha(blob.sha256)[0]?.size;
  return {
    sha256: blob.sha256,
    size: read.size,
    actualSha256: read.sha256,
    ...(expectedSize !== undefined ? { expectedSize } : {}),
    ...(quarantinedTo !== undefined ? { quarantinedTo } : {}),
    ...(error !== undefined ? { error } : {}),
    runs: affected(deps.artifacts, blob.sha256),
  };
}

/** The `verify` command's text output: per damaged blob what is wrong, where it went and its runs. */
export function formatVerifyReport(report: VerifyReport): string {
  const lines: string[] = [];
  for (const d of report.damaged) {
    const expected = d.expectedSize === undefined ? '' : `, ${d.expectedSize} expected`;
    const where = d.quarantinedTo !== undefined ? `quarantined to ${d.quarantinedTo}` : (d.error ?? '');
    lines.push(`damaged ${d.sha256}: ${d.size} bytes hashing to ${d.actualSha256}${expected}; ${where}`);
    if (d.runs.length === 0) lines.push('  no run refers to it');
    for (const r of d.runs) lines.push(`  artifact of ${r.job}#${r.number} ${r.platform}: ${r.path}`);
  }
  for (const m of report.missing) {
    lines.push(`missing ${m.sha256} (${m.size} bytes): not in the store`);
    for (const r of m.runs) lines.push(`  artifact of ${r.job}#${r.number} ${r.platform}: ${r.path}`);
  }
  for (const u of report.unreadable) lines.push(`unreadable ${u.sha256}: ${u.error}`);
  const n = report.damaged.length;
  let summary =
    `checked ${report.checked} ${report.checked === 1 ? 'blob' : 'blobs'} (${formatBytes(report.bytes)}) ` +
    `in ${report.store}: ${n} damaged`;
  if (report.missing.length > 0) summary += `, ${report.missing.length} missing`;
  if (report.unreadable.length > 0) summary += `, ${report.unreadable.length} unreadable`;
  if (n + report.missing.length > 0) summary += '; the next upload of those files stores them again';
  lines.push(summary);
  return `${lines.join('\n')}\n`;
}
