import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import { BLOCK, type BlockIndex, readBlock, readIndex, readRange } from './gz-blocks.ts';

interface OpenLog {
  fd: number;
  /** Written so far (the length the next batch records). */
  bytes: number;
  /** Vouched for by a committed batch: what readers see. */
  durable: number;
  dirty: boolean;
  /** Bytes appended since the last background sync started. */
  unsynced: number;
  /** A background fdatasync is under way (the fd is closed only once it is over). */
  syncing: boolean;
  /** What a background fdatasync failed with: the next synchronous one reports it (the kernel told us once). */
  syncError: Error | undefined;
  /** close() came while a background sync was under way: its callback closes the fd. */
  closing: boolean;
}

/**
 * Like RocksDB's bytes_per_sync: once this much is appended to a console, its writeback starts in
 * the background (the thread pool), so the fdatasync that precedes a batch's commit finds little
 * left to write instead of blocking the event loop on megabytes of a chatty job's output.
 */
export const WRITEBACK_BYTES = 1024 * 1024;

/** A compressed console's layout and the block last inflated (readers go through a log in order). */
interface Compressed {
  index: BlockIndex;
  block?: { n: number; data: Buffer };
}

/** Compressed consoles whose layout is kept in memory (each a few KB per GB of log). */
const INDEX_CACHE = 32;

/**
 * Per-run console files under DATA/logs. Appends are plain writes (page cache); `syncDirty`
 * fdatasyncs every file written since the last batch, just before the batch that records the new
 * durable length commits. After a crash the server cuts each file back to that recorded length.
 * Readers (`size`) see only bytes a committed batch vouches for (`publish`), so no observer or
 * page ever shows output that a crash or a rolled-back batch (disk full) takes back.
 *
 * A finished run's console is later replaced by `RUN.log.gz` (console/compress.ts): readers take
 * the raw file while it exists and the compressed one otherwise, so the swap (rename, then unlink)
 * is invisible to them.
 */
export class LogStore {
  private readonly dir: string;
  private readonly open = new Map<string, OpenLog>();
  private readonly compressed = new Map<string, Compressed>();
  private readonly closedListeners: ((runId: string) => void)[] = [];

  /** `logger` hears of compressed consoles that cannot be read (served as empty or cut short, never thrown). */
  constructor(
    dataDir: string,
    private readonly logger?: Pick<Logger, 'warn'>,
  ) {
    this.dir = join(dataDir, 'logs');
    mkdirSync(this.dir, { recursive: true });
  }

  path(runId: string): string {
    return join(this.dir, `${runId}.log`);
  }

  /** Where the console of a finished run is once compressed. */
  gzPath(runId: string): string {
    return join(this.dir, `${runId}.log.gz`);
  }

  get directory(): string {
    return this.dir;
  }

  /** Whether the run's file is open for appending (its run not finished). */
  isOpen(runId: string): boolean {
    return this.open.has(runId);
  }

  /** Call `fn` after a run's file was closed (its run finished, or the server stops). */
  onClosed(fn: (runId: string) => void): void {
    this.closedListeners.push(fn);
  }

  /** The compressed form changed on disk (replaced or removed): drop what is cached of it. */
  forget(runId: string): void {
    this.compressed.delete(runId);
  }

  /** Cut a run's file back to what the database says is durable (crash recovery, rolled-back batch). */
  truncateTo(runId: string, bytes: number): void {
    const log = this.open.get(runId);
    if (!log) {
      // not opened (nor created) for this: creating a file may itself fail on a full disk
      let size = 0;
      try {
        size = statSync(this.path(runId)).size;
      } catch {
        return;
      }
      if (size > bytes) truncateSync(this.path(runId), bytes);
      return;
    }
    if (log.bytes > bytes) {
      ftruncateSync(log.fd, bytes);
      log.bytes = bytes;
    }
    log.durable = Math.min(log.durable, bytes);
  }

  /** Append raw console bytes (or text, as UTF-8: the server's own lines); returns the file length after the write. */
  append(runId: string, data: Buffer | string): number {
    const log = this.handle(runId);
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(log.fd, buf, off, buf.length - off, log.bytes + off);
    } catch (err) {
      // e.g. ENOSPC after a short write: leave no partial chunk behind the known length
      if (off > 0) ftruncateSync(log.fd, log.bytes);
      throw err;
    }
    log.bytes += buf.length;
    log.dirty = true;
    log.unsynced += buf.length;
    if (log.unsynced >= WRITEBACK_BYTES && !log.syncing) this.syncInBackground(log);
    return log.bytes;
  }

  /** Durability is unchanged: the batch's own fdatasync still runs; this one only starts the writing early. */
  private syncInBackground(log: OpenLog): void {
    log.unsynced = 0;
    log.syncing = true;
    fdatasync(log.fd, (err) => {
      log.syncing = false;
      // a failed writeback is reported once per file by the kernel: keep it for the batch's sync
      if (err) log.syncError ??= err;
      if (log.closing) closeSync(log.fd);
    });
  }

  /** fdatasync now, reporting a failure of a background sync since the last call as its own. */
  private syncNow(log: OpenLog): void {
    const failed = log.syncError;
    log.syncError = undefined;
    fdatasyncSync(log.fd);
    if (failed) throw failed;
  }

  /** Bytes readers may see: committed ones while the file is open, the whole file once closed. */
  size(runId: string): number {
    const log = this.open.get(runId);
    if (log) return log.durable;
    // compressed: the raw file goes only after the compressed one is in place
    return (
      statSync(this.path(runId), { throwIfNoEntry: false })?.size ??
      this.withCompressed(runId, (_fd, c) => c.index.total) ??
      0
    );
  }

  /** Bytes written, durable or not: what the batch being committed records as the length. */
  written(runId: string): number {
    return this.open.get(runId)?.bytes ?? this.size(runId);
  }

  /** A batch that recorded the file as `bytes` long committed: readers may see that far. */
  publish(runId: string, bytes: number): void {
    const log = this.open.get(runId);
    if (log) log.durable = Math.max(log.durable, Math.min(bytes, log.bytes));
  }

  /** Read up to `length` bytes at `offset` (synchronous: small reads of a page-cached file). */
  read(runId: string, offset: number, length: number): Buffer {
    const log = this.open.get(runId);
    let fd = log?.fd;
    let opened = false;
    if (fd === undefined) {
      try {
        fd = openSync(this.path(runId), 'r');
        opened = true;
      } catch {
        return this.withCompressed(runId, (gz, c) => this.readCompressed(gz, c, offset, length)) ?? Buffer.alloc(0);
      }
    }
    try {
      const buf = Buffer.allocUnsafe(length);
      const n = readSync(fd, buf, 0, length, offset);
      return buf.subarray(0, n);
    } finally {
      if (opened) closeSync(fd);
    }
  }

  /** Runs whose file is open (written since start and not finished). */
  openRuns(): string[] {
    return [...this.open.keys()];
  }

  /** fdatasync every file appended to since the last call. */
  syncDirty(): void {
    for (const log of this.open.values()) {
      if (log.dirty) {
        log.dirty = false;
        try {
          this.syncNow(log);
        } catch (err) {
          log.dirty = true;
          throw err;
        }
      }
    }
  }

  /** The run is finished: sync and close its file. */
  close(runId: string): void {
    const log = this.open.get(runId);
    if (!log) return;
    if (log.dirty) this.syncNow(log);
    if (log.syncing) log.closing = true;
    else closeSync(log.fd);
    this.open.delete(runId);
    for (const fn of this.closedListeners) fn(runId);
  }

  closeAll(): void {
    for (const id of [...this.open.keys()]) this.close(id);
  }

  private handle(runId: string): OpenLog {
    let log = this.open.get(runId);
    if (!log) {
      this.uncompress(runId);
      const fd = openSync(this.path(runId), 'a+');
      const bytes = statSync(this.path(runId)).size;
      // at start every byte is recorded or is cut by recovery before anyone reads
      log = {
        fd,
        bytes,
        durable: bytes,
        dirty: false,
        unsynced: 0,
        syncing: false,
        syncError: undefined,
        closing: false,
      };
      this.open.set(runId, log);
    }
    return log;
  }

  /** Run `fn` on the open compressed console, or return undefined when there is none. */
  private withCompressed<T>(runId: string, fn: (fd: number, c: Compressed) => T): T | undefined {
    let fd;
    try {
      fd = openSync(this.gzPath(runId), 'r');
    } catch {
      return undefined;
    }
    try {
      let c = this.compressed.get(runId);
      if (!c) {
        c = { index: readIndex(fd, this.gzPath(runId)) };
        if (this.compressed.size >= INDEX_CACHE) this.compressed.delete(this.compressed.keys().next().value!);
      } else {
        this.compressed.delete(runId); // re-inserted below: the most recently used come last
      }
      this.compressed.set(runId, c);
      return fn(fd, c);
    } catch (err) {
      // damaged on disk (a bad block, a file truncated by hand): a reader gets less, the server stays up
      this.logger?.warn('console.unreadable', { run: runId, file: this.gzPath(runId), error: (err as Error).message });
      return undefined;
    } finally {
      closeSync(fd);
    }
  }

  private readCompressed(fd: number, c: Compressed, offset: number, length: number): Buffer {
    const end = Math.min(c.index.total, offset + length);
    const parts: Buffer[] = [];
    for (let pos = offset; pos < end;) {
      const n = Math.floor(pos / BLOCK);
      if (c.block?.n !== n) c.block = { n, data: readBlock(fd, c.index, n) };
      const part = c.block.data.subarray(pos - n * BLOCK, Math.min(c.block.data.length, end - n * BLOCK));
      if (part.length === 0) break;
      parts.push(part);
      pos += part.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /**
   * A finished run written to again (never expected: a finished run takes no output): its
   * compressed console becomes the raw file again first, so nothing is appended to nothing.
   */
  private uncompress(runId: string): void {
    if (statSync(this.path(runId), { throwIfNoEntry: false })) return;
    let raw;
    try {
      raw = readRange(this.gzPath(runId), 0, Number.MAX_SAFE_INTEGER);
    } catch {
      return; // no compressed form either: a new console
    }
    // a crash before the unlink below leaves both; a start keeps the longer (ConsoleCompressor.settle)
    const fd = openSync(this.path(runId), 'w', 0o600);
    try {
      for (let off = 0; off < raw.length;) off += writeSync(fd, raw, off, raw.length - off, off);
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    unlinkSync(this.gzPath(runId));
    this.forget(runId);
  }
}
