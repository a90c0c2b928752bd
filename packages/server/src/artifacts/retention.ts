import { formatBytes, isTerminal } from '@builder/protocol';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { Db } from '../store/db.ts';
import {
  artifactRowDeleter,
  blobReferenceChecker,
  finishedRunsWithArtifacts,
  latestSucceededRunIds,
  uploadForgetter,
  type RunWithArtifacts,
} from '../store/retention.ts';
import type { BlobStore } from './blob-store.ts';

export interface RetentionPolicy {
  /** Per job and platform, keep the artifacts of this many newest finished runs that have any. */
  keepLatest?: number;
  /** Strip the artifacts of runs that finished longer ago than this. */
  olderThanMs?: number;
  /** Only this job's runs (blob collection still looks at every blob). */
  job?: string;
  /** Report what would go, change nothing. */
  dryRun?: boolean;
  /**
   * An unreferenced blob younger than this is kept: a transfer stores its blobs before it records
   * the run's artifact rows, and must not lose them in between. Default 1 h.
   */
  blobGraceMs?: number;
}

export interface VacuumDeps {
  db: Db;
  blobs: BlobStore;
  now: number;
  log?: Logger;
  /**
   * Runs the row deletion as one durable transaction. Default: an immediate transaction on `db`;
   * the server passes its group commit, whose batch may already hold the connection's transaction.
   */
  write?: (fn: () => void) => void;
  /** Stops blob collection early (the server closing). */
  signal?: AbortSignal;
}

export interface StrippedRun {
  job: string;
  number: number;
  platform: string;
  files: number;
  bytes: number;
}

export interface VacuumReport {
  runs: StrippedRun[];
  /** Totals over `runs`. */
  files: number;
  bytes: number;
  blobsDeleted: number;
  /** Sizes of the deleted blobs, as the store lists them. */
  bytesFreed: number;
}

export const DEFAULT_BLOB_GRACE_MS = 3_600_000;

/**
 * Apply a retention policy: strip the artifact rows of runs the policy selects (runs and their
 * consoles stay), then delete every blob no row references any more.
 *
 * With both rules, a run is stripped when either selects it: each is a limit on its own (how many,
 * how old), and an operator who sets both expects neither to be exceeded. The latest successful run
 * of each job on each platform is never stripped, whatever its age, because that is what
 * `latest` downloads serve.
 */
export async function vacuum(deps: VacuumDeps, policy: RetentionPolicy): Promise<VacuumReport> {
  const { db, blobs, now } = deps;
  if (policy.keepLatest === undefined && policy.olderThanMs === undefined) {
    throw new Error('a retention policy needs keepLatest or olderThanMs');
  }
  let selected: RunWithArtifacts[] = [];
  const plan = () => {
    selected = selectRuns(db, now, policy);
  };
  if (policy.dryRun) plan();
  else {
    // chosen and deleted in one transaction: another process (the server, while `vacuum` runs
    // from a shell) cannot change the picture in between
    const strip = artifactRowDeleter(db);
    const write = deps.write ?? ((fn: () => void) => db.transaction(fn).immediate());
    write(() => {
      plan();
      for (const r of selected) strip(r.id);
    });
  }
  const runs = selected.map(({ job, number, platform, files, bytes }) => ({ job, number, platform, files, bytes }));
  if (!policy.dryRun) for (const r of runs) deps.log?.debug('artifacts.stripped', { ...r });

  // a dry run has not deleted the rows, so it asks whether anything outside the selection refers
  const referenced = blobReferenceChecker(db);
  const forgetUpload = uploadForgetter(db);
  const exclude = policy.dryRun ? selected.map((r) => r.id) : [];
  const graceMs = policy.blobGraceMs ?? DEFAULT_BLOB_GRACE_MS;
  let blobsDeleted = 0;
  let bytesFreed = 0;
  for await (const blob of blobs.list()) {
    if (deps.signal?.aborted) break;
    if (blob.modifiedAt > now - graceMs) continue;
    // asked per blob right before deleting it, so a row recorded while we list is still seen
    if (referenced(blob.sha256, exclude)) continue;
    if (!policy.dryRun) {
      await blobs.delete(blob.sha256);
      forgetUpload(blob.sha256);
    }
    deps.log?.debug('artifacts.blob_deleted', { sha256: blob.sha256, dryRun: policy.dryRun === true });
    blobsDeleted++;
    bytesFreed += blob.size;
  }
  return {
    runs,
    files: runs.reduce((n, r) => n + r.files, 0),
    bytes: runs.reduce((n, r) => n + r.bytes, 0),
    blobsDeleted,
    bytesFreed,
  };
}

/** The finished runs with artifacts that the policy strips, ordered by job, platform, number. */
function selectRuns(db: Db, now: number, policy: RetentionPolicy): RunWithArtifacts[] {
  const candidates = finishedRunsWithArtifacts(db, policy.job ?? null).filter((r) => isTerminal(r.state));
  // the newest successful run per job and platform, with or without artifacts: if it has none,
  // an older success must not stand in for it
  const protectedIds = latestSucceededRunIds(db);
  const cutoff = policy.olderThanMs === undefined ? undefined : now - policy.olderThanMs;
  const out: RunWithArtifacts[] = [];
  let group = '';
  let rank = 0;
  for (const r of candidates) {
    const key = `${r.jobId}\0${r.platform}`;
    rank = key === group ? rank + 1 : 1;
    group = key;
    const tooMany = policy.keepLatest !== undefined && rank > policy.keepLatest;
    const tooOld = cutoff !== undefined && r.finishedAt < cutoff;
    if ((tooMany || tooOld) && !protectedIds.has(r.id)) out.push(r);
  }
  return out.sort((a, b) => a.job.localeCompare(b.job) || a.platform.localeCompare(b.platform) || a.number - b.number);
}

/** The server's configured policy (`--retain-latest`, `--retain-for`). */
export interface RetentionOptions {
  keepLatest?: number;
  olderThanMs?: number;
  /** How often the policy is applied after the pass at start; default 1 h. */
  intervalMs?: number;
}

/**
 * Apply the policy now and then every interval until `stop()`. A pass still running when the next
 * is due is not doubled (listing a large bucket can take a while); `stop()` cuts blob collection
 * short and waits for the pass, so the database can be closed after it.
 */
export function startRetention(
  deps: Omit<VacuumDeps, 'now' | 'signal' | 'log'> & { clock: Clock; logger: Logger },
  opts: RetentionOptions,
): { stop(): Promise<void> } {
  const abort = new AbortController();
  const policy: RetentionPolicy = {};
  if (opts.keepLatest !== undefined) policy.keepLatest = opts.keepLatest;
  if (opts.olderThanMs !== undefined) policy.olderThanMs = opts.olderThanMs;
  let running: Promise<void> | undefined;
  const pass = () => {
    if (running) return;
    const now = deps.clock.now();
    running = vacuum({ ...deps, now, log: deps.logger, signal: abort.signal }, policy)
      .then((r) =>
        deps.logger.info('artifacts.vacuum', {
          ...policy,
          runs: r.runs.length,
          files: r.files,
          bytes: r.bytes,
          blobsDeleted: r.blobsDeleted,
          bytesFreed: r.bytesFreed,
          store: deps.blobs.description,
        }),
      )
      .catch((err: unknown) =>
        deps.logger.error('artifacts.vacuum_failed', { error: (err as Error).message, store: deps.blobs.description }),
      )
      .finally(() => {
        running = undefined;
      });
  };
  pass();
  const timer = setInterval(pass, opts.intervalMs ?? 3_600_000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      abort.abort();
      await running;
    },
  };
}

/** The `vacuum` command's text output: a line per stripped run and a total. */
export function formatVacuumReport(report: VacuumReport, opts: { dryRun: boolean; store: string }): string {
  const lines = report.runs.map(
    (r) =>
      `${r.job}#${r.number} ${r.platform}: ${r.files} ${r.files === 1 ? 'file' : 'files'}, ${formatBytes(r.bytes)}`,
  );
  const verb = opts.dryRun ? 'would remove' : 'removed';
  lines.push(
    `${opts.dryRun ? 'dry run: ' : ''}${verb} the artifacts of ${report.runs.length} ${report.runs.length === 1 ? 'run' : 'runs'} ` +
      `(${report.files} files, ${formatBytes(report.bytes)}); ` +
      `${opts.dryRun ? 'would delete' : 'deleted'} ${report.blobsDeleted} ${report.blobsDeleted === 1 ? 'blob' : 'blobs'} ` +
      `(${formatBytes(report.bytesFreed)}) from ${opts.store}`,
  );
  return `${lines.join('\n')}\n`;
}
