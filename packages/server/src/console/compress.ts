import { closeSync, openSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir } from '../artifacts/local-blobs.ts';
import type { Logger } from '../log.ts';
import { compressConsole, readIndex } from './gz-blocks.ts';
import type { LogStore } from './log-store.ts';

export interface CompressorDeps {
  logs: Pick<LogStore, 'path' | 'gzPath' | 'directory' | 'isOpen' | 'forget' | 'onClosed'>;
  /** Whether the run is finished for good (its console will not grow again). */
  finished: (runId: string) => boolean;
  logger: Logger;
}

const TMP = '.tmp';

/**
 * Compresses the console of each finished run, one at a time, off the request path: block gzip to
 * `RUN.log.gz.tmp`, fsync, rename to `RUN.log.gz`, fsync the directory, then unlink `RUN.log`.
 * Whenever a crash comes, one whole readable form is left; `recover` at start finishes the job:
 * a leftover temp file goes, a raw file next to a complete compressed one of the same length goes.
 */
export class ConsoleCompressor {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Temp names unique to this compressor: one left running by a crash test never meets the next one's. */
  private readonly tag = `${process.pid}.${Math.random().toString(36).slice(2, 8)}`;

  constructor(private readonly deps: CompressorDeps) {
    deps.logs.onClosed((runId) => {
      if (deps.finished(runId)) this.enqueue(runId);
    });
  }

  /** Settle what a crash left half done and queue every finished run whose console is still raw. */
  recover(): void {
    const { logs } = this.deps;
    const names = new Set(readdirSync(logs.directory));
    for (const name of names) {
      if (name.endsWith(TMP)) {
        unlinkSync(join(logs.directory, name));
        continue;
      }
      if (!name.endsWith('.log')) continue;
      const runId = name.slice(0, -'.log'.length);
      if (names.has(`${name}.gz`)) this.settle(runId);
      else if (!logs.isOpen(runId) && this.deps.finished(runId)) this.enqueue(runId);
    }
  }

  enqueue(runId: string): void {
    if (this.stopped || this.queued.has(runId)) return;
    this.queued.add(runId);
    this.queue.push(runId);
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  /** Until every queued console is compressed (tests, and `stop`). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** No new work; the console being compressed is finished or left raw. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.length = 0;
    await this.idle();
  }

  private async drain(): Promise<void> {
    for (let runId = this.queue.shift(); runId !== undefined; runId = this.queue.shift()) {
      this.queued.delete(runId);
      try {
        await this.compress(runId);
      } catch (err) {
        // left raw, which serves as well: only the disk space is not saved
        if (!this.stopped)
          this.deps.logger.warn('console.compress_failed', { run: runId, error: (err as Error).message });
      }
    }
  }

  private async compress(runId: string): Promise<void> {
    const { logs } = this.deps;
    const raw = logs.path(runId);
    const tmp = `${logs.gzPath(runId)}.${this.tag}${TMP}`;
    let size;
    try {
      size = statSync(raw).size;
    } catch {
      return; // compressed already, or never had a console
    }
    try {
      await compressConsole(raw, tmp, size);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const changed = () => logs.isOpen(runId) || statSync(raw).size !== size;
    // stopped (the server is closing, or gone in a crash test): the swap is left to the next start
    if (this.stopped || changed()) {
      unlinkSync(tmp);
      return;
    }
    renameSync(tmp, logs.gzPath(runId));
    await syncDir(logs.directory);
    // written to again meanwhile (never expected): the raw file is the truth, as `settle` decides
    if (changed()) unlinkSync(logs.gzPath(runId));
    else unlinkSync(raw);
    logs.forget(runId);
  }

  /**
   * Both forms exist: a crash between rename and unlink (the same length: the raw one goes), or
   * while a compressed console was being turned back into a raw one to be written to (the raw one
   * shorter: it goes), or after that raw one was written to (longer: the compressed one goes).
   */
  private settle(runId: string): void {
    const { logs } = this.deps;
    let total = -1;
    const fd = openSync(logs.gzPath(runId), 'r');
    try {
      total = readIndex(fd, logs.gzPath(runId)).total;
    } catch {
      // unreadable compressed form: the raw file stays
    } finally {
      closeSync(fd);
    }
    const rawSize = statSync(logs.path(runId)).size;
    if (total >= rawSize) unlinkSync(logs.path(runId));
    else unlinkSync(logs.gzPath(runId));
    logs.forget(runId);
  }
}
