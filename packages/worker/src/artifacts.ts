import { readdirSync } from 'node:fs';
import { scanOutputDir, OutputRefused, sendArtifacts } from '@builder/protocol/transfer';
import { formatBytes, type Logger } from '@builder/protocol';
import type { Trust } from '@builder/protocol/net';
import { describeError } from './errors.ts';

export interface ArtifactTarget {
  /** The server's HTTP base, e.g. http://server:8330 (a reverse-proxy path prefix is kept). */
  readonly base: string;
  readonly token: string;
  /** Extra CAs for an https:// server (`--ca`). */
  readonly trust?: Trust;
  /** Retries after a network failure or a server error, with doubling delays from retryBaseMs. */
  readonly attempts: number;
  readonly retryBaseMs: number;
  /**
   * How long to keep trying while the server answers 507 (its disk is full): attempts do not count
   * then, the delay stops doubling at retryMaxMs. The run's result waits, the job's slot stays taken.
   */
  readonly fullWaitMs: number;
  readonly retryMaxMs: number;
}

/**
 * Send whatever the job left in its output dir as the attempt's artifacts. Resolves with a
 * message when they are refused (by the server, or because the dir holds something that cannot be
 * an artifact) or could not be delivered; undefined when they were stored or there were none.
 */
export async function uploadOutput(
  dir: string,
  run: { runId: string; attempt: number; attemptSecret: string },
  target: ArtifactTarget,
  io: { note(text: string): void; log: Logger },
): Promise<string | undefined> {
  // most jobs leave nothing: one synchronous readdir instead of thread-pool round trips keeps
  // that path as cheap as it was before artifacts (it sits between a job's exit and its result)
  try {
    if (readdirSync(dir).length === 0) return undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // the job removed it
    return `cannot read the output dir: ${describeError(err)}`;
  }
  let scanned;
  try {
    scanned = await scanOutputDir(dir);
  } catch (err) {
    if (err instanceof OutputRefused) return `artifacts refused: ${err.message}`;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // the job removed its output dir
    return `cannot read the output dir: ${describeError(err)}`;
  }
  for (const n of scanned.notes) io.note(`[builder] artifacts: ${n}`);
  const { files } = scanned;
  if (files.length === 0) return undefined;
  const bytes = files.reduce((n, f) => n + f.size, 0);
  const url = `${target.base}/artifacts/${run.runId}/${run.attempt}`;
  const firstTry = Date.now();
  for (let i = 1; ; i++) {
    const started = Date.now();
    const r = await sendArtifacts({
      url,
      missingUrl: `${target.base}/blobs/missing`,
      token: target.token,
      attemptSecret: run.attemptSecret,
      files,
      ...(target.trust && { trust: target.trust }),
    });
    if (r.ok) {
      const secs = (Date.now() - started) / 1000;
      const had = bytes - r.sent > 0 ? ` (${formatBytes(bytes - r.sent)} the server had already)` : '';
      io.note(
        `[builder] artifacts: ${files.length} file${files.length === 1 ? '' : 's'}, ${formatBytes(bytes)}, ${formatBytes(r.sent)} sent in ${secs.toFixed(1)}s${had}`,
      );
      io.log.info('artifacts.sent', { files: files.length, bytes, stored: r.stored });
      return undefined;
    }
    const transient = r.status === 0 || r.status >= 500;
    // a full disk on the server is an outage that ends when an operator frees space, not a verdict
    const serverFull = r.status === 507 && Date.now() - firstTry < target.fullWaitMs;
    if (!transient || (i >= target.attempts && !serverFull)) {
      io.log.warn('artifacts.not_stored', { status: r.status, error: r.error });
      return transient ? `cannot send the artifacts: ${r.error}` : `artifacts refused: ${r.error}`;
    }
    const delay = Math.min(target.retryBaseMs * 2 ** (Math.min(i, 30) - 1), target.retryMaxMs);
    io.note(`[builder] sending artifacts failed (${r.error}); retrying in ${Math.round(delay / 1000)}s`);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
