import { closeSync, fdatasyncSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { isStorageFull, storageFullError } from './full.ts';

export interface StorageOutageOptions {
  dataDir: string;
  clock: Clock;
  logger: Logger;
  /** How often the probe tries to write while refusing. */
  probeMs?: number;
  /** The probe writes and fsyncs this much. */
  probeBytes?: number;
  /**
   * Leaving the outage also needs this much free (at most a quarter of the file system): what
   * failed usually frees its own bytes at once (a refused transfer, a cut console chunk), and
   * resuming with just that room would only fill the disk again.
   */
  resumeFreeBytes?: number;
}

/**
 * A full data dir is an outage of writes, not a crash. Whoever hits ENOSPC or SQLITE_FULL calls
 * `enter`; from then on the server refuses what it cannot make durable (new runs, console, artifact
 * transfers), while reads go on. A probe writes and fsyncs a file every `probeMs`; the first
 * success ends the outage by itself, and the `ended` listeners make the workers resend what was
 * refused. Nothing is lost in between because nothing refused was ever acknowledged.
 */
export class StorageOutage {
  private since: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly started: ((cause: string) => void)[] = [];
  private readonly ended: (() => void)[] = [];
  private readonly probePath: string;
  private readonly probeMs: number;
  private readonly probeBytes: number;
  private readonly resumeFreeBytes: number;
  /** Outages so far (for logs and tests). */
  count = 0;

  constructor(private readonly opts: StorageOutageOptions) {
    this.probePath = join(opts.dataDir, '.space-probe');
    this.probeMs = opts.probeMs ?? 1000;
    this.probeBytes = opts.probeBytes ?? 1024 * 1024;
    this.resumeFreeBytes = opts.resumeFreeBytes ?? 64 * 1024 * 1024;
  }

  /** True while the server refuses writes. */
  get refusing(): boolean {
    return this.since !== undefined;
  }

  /** Throws STORAGE_FULL while refusing: for requests that would write (`what`: "queue a run"). */
  check(what: string): void {
    if (this.refusing) throw storageFullError(what);
  }

  onStart(fn: (cause: string) => void): void {
    this.started.push(fn);
  }

  onEnd(fn: () => void): void {
    this.ended.push(fn);
  }

  /** A write failed for lack of space (`where`: what was being written). Idempotent while refusing. */
  enter(err: unknown, where: string): void {
    if (this.refusing) return;
    this.since = this.opts.clock.now();
    this.count++;
    const cause = `${where}: ${(err as Error).message ?? String(err)}`;
    this.opts.logger.error('storage.full', { cause, freeBytes: this.freeBytes(), dataDir: this.opts.dataDir });
    this.timer = setInterval(() => this.probe(), this.probeMs);
    this.timer.unref();
    for (const fn of this.started) this.safely(() => fn(cause));
  }

  /** Bytes an unprivileged writer can still use in the data dir (undefined if statfs fails). */
  freeBytes(): number | undefined {
    return this.space()?.free;
  }

  private space(): { free: number; total: number } | undefined {
    try {
      const s = statfsSync(this.opts.dataDir, { bigint: true });
      return { free: Number(s.bavail * s.bsize), total: Number(s.blocks * s.bsize) };
    } catch {
      return undefined;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Enough room, then write, fsync and remove a probe file: success ends the outage. */
  probe(): boolean {
    const space = this.space();
    if (space && space.free < Math.min(this.resumeFreeBytes, space.total / 4)) return false;
    let fd: number | undefined;
    try {
      fd = openSync(this.probePath, 'w');
      const block = Buffer.alloc(Math.min(this.probeBytes, 64 * 1024));
      for (let off = 0; off < this.probeBytes; off += block.length) writeSync(fd, block);
      fdatasyncSync(fd);
    } catch (err) {
      if (!isStorageFull(err)) this.opts.logger.warn('storage.probe_failed', { error: String(err) });
      return false;
    } finally {
      try {
        if (fd !== undefined) closeSync(fd);
        rmSync(this.probePath, { force: true });
      } catch {
        // the next probe tries again
      }
    }
    this.leave();
    return true;
  }

  private leave(): void {
    if (!this.refusing) return;
    const ms = this.opts.clock.now() - this.since!;
    this.since = undefined;
    clearInterval(this.timer);
    this.timer = undefined;
    this.opts.logger.info('storage.recovered', { afterMs: Math.round(ms), freeBytes: this.freeBytes() });
    for (const fn of this.ended) this.safely(fn);
  }

  /** A listener's failure must not stop the others (nor escape into a timer and crash the server). */
  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.logger.error('storage.listener_failed', { error: String((err as Error).stack ?? err) });
    }
  }
}
