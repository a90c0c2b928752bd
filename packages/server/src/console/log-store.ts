import {
  closeSync,
  fdatasyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  statSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

interface OpenLog {
  fd: number;
  /** Written so far (the length the next batch records). */
  bytes: number;
  /** Vouched for by a committed batch: what readers see. */
  durable: number;
  dirty: boolean;
}

/**
 * Per-run console files under DATA/logs. Appends are plain writes (page cache); `syncDirty`
 * fdatasyncs every file written since the last batch, just before the batch that records the new
 * durable length commits. After a crash the server cuts each file back to that recorded length.
 * Readers (`size`) see only bytes a committed batch vouches for (`publish`), so no observer or
 * page ever shows output that a crash or a rolled-back batch (disk full) takes back.
 */
export class LogStore {
  private readonly dir: string;
  private readonly open = new Map<string, OpenLog>();

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'logs');
    mkdirSync(this.dir, { recursive: true });
  }

  path(runId: string): string {
    return join(this.dir, `${runId}.log`);
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
    return log.bytes;
  }

  /** Bytes readers may see: committed ones while the file is open, the whole file once closed. */
  size(runId: string): number {
    const log = this.open.get(runId);
    if (log) return log.durable;
    try {
      return statSync(this.path(runId)).size;
    } catch {
      return 0;
    }
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
        return Buffer.alloc(0);
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
        fdatasyncSync(log.fd);
        log.dirty = false;
      }
    }
  }

  /** The run is finished: sync and close its file. */
  close(runId: string): void {
    const log = this.open.get(runId);
    if (!log) return;
    if (log.dirty) fdatasyncSync(log.fd);
    closeSync(log.fd);
    this.open.delete(runId);
  }

  closeAll(): void {
    for (const id of [...this.open.keys()]) this.close(id);
  }

  private handle(runId: string): OpenLog {
    let log = this.open.get(runId);
    if (!log) {
      const fd = openSync(this.path(runId), 'a+');
      const bytes = statSync(this.path(runId)).size;
      // at start every byte is recorded or is cut by recovery before anyone reads
      log = { fd, bytes, durable: bytes, dirty: false };
      this.open.set(runId, log);
    }
    return log;
  }
}
