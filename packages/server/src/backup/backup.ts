import Database from 'better-sqlite3';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { isTerminal, type RunState } from '@builder/protocol';
import { blobKey, type BlobStore } from '../artifacts/blob-store.ts';
import { LocalBlobStore, syncDir } from '../artifacts/local-blobs.ts';
import { LogStore } from '../console/log-store.ts';
import { ArtifactStore } from '../store/artifacts.ts';
import { consoleExtents, databaseCounts, quickCheck } from '../store/backup-queries.ts';
import { VERSION } from '../version.ts';
import { copyFileHashed, hashFile, placeVerified, syncTree } from './files.ts';
import { MANIFEST, type Manifest, readManifest } from './manifest.ts';

export interface BackupOptions {
  dataDir: string;
  /** The backup directory: created, or replaced as a whole by the new backup. */
  to: string;
  /** The server's artifact store (local blobs are copied, an S3 bucket is not). */
  blobs: BlobStore;
  /** Copy blobs from the store even where a hard link would do (a backup on the store's disk). */
  copy?: boolean;
  now: () => Date;
}

export interface BackupReport {
  dir: string;
  manifest: Manifest;
  /** Blobs taken from the previous backup in the same directory (hash checked), linked or copied from the store. */
  blobsReused: number;
  blobsLinked: number;
  blobsCopied: number;
}

/** The backup cannot be made (bad target, no database); nothing was changed. */
export class BackupError extends Error {}

/** Copy chunk size for consoles of running runs. */
const CHUNK = 1 << 20;

/**
 * A consistent copy of a data dir, safe while the server runs. The database first, with SQLite's
 * online backup (one snapshot); then exactly what that snapshot refers to: each run's console up
 * to the length the snapshot records (a running run's console goes on growing; its copy ends
 * where the copied database says it does), and each artifact blob it lists, hash checked. All of
 * it goes to a temp dir beside DIR that becomes DIR by rename once complete, manifest last: DIR is
 * always the previous whole backup or the new whole one. Blobs already in the previous backup
 * (right size and hash) are linked from it, so a nightly backup copies only new blobs.
 */
export async function takeBackup(opts: BackupOptions): Promise<BackupReport> {
  const dbFile = join(opts.dataDir, 'builder.sqlite');
  if (!existsSync(dbFile)) throw new BackupError(`no builder database in ${opts.dataDir}`);
  const dir = resolve(opts.to);
  await mkdir(dirname(dir), { recursive: true });
  await recoverInterrupted(dir);
  const previous = previousBackup(dir);
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { mode: 0o700 });
  try {
    const report = await fill(opts, dbFile, tmp, previous ? dir : undefined);
    await writeFile(join(tmp, MANIFEST), `${JSON.stringify(report.manifest, null, 2)}\n`, { mode: 0o600 });
    const fh = await open(join(tmp, MANIFEST), 'r');
    await fh.sync();
    await fh.close();
    await syncTree(tmp);
    if (previous === 'empty') await rm(dir, { recursive: true });
    if (previous === 'backup') {
      const old = `${dir}.old-${process.pid}`;
      await rename(dir, old);
      await rename(tmp, dir);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, dir);
    }
    await syncDir(dirname(dir));
    return { ...report, dir };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** DIR's state: absent, an empty directory, or a previous backup; anything else is refused. */
function previousBackup(dir: string): 'empty' | 'backup' | undefined {
  let names;
  try {
    names = readdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') throw new BackupError(`--to ${dir} is a file, not a directory`);
    throw err;
  }
  if (names.length === 0) return 'empty';
  try {
    readManifest(dir);
  } catch {
    throw new BackupError(
      `--to ${dir} holds files but no backup manifest: name an empty or new directory, or one an earlier backup made`,
    );
  }
  return 'backup';
}

/**
 * What an interrupted earlier backup left: a temp dir of a process that is gone, or (between the
 * two renames) the previous backup moved aside and DIR missing, which is put back.
 */
async function recoverInterrupted(dir: string): Promise<void> {
  const parent = dirname(dir);
  for (const name of await readdir(parent)) {
    const m = /^(.*)\.(tmp|old)-(\d+)$/.exec(name);
    if (!m || m[1] !== basename(dir) || alive(Number(m[3]))) continue;
    if (m[2] === 'old' && !existsSync(dir)) await rename(join(parent, name), dir);
    else await rm(join(parent, name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function fill(
  opts: BackupOptions,
  dbFile: string,
  tmp: string,
  previous: string | undefined,
): Promise<Omit<BackupReport, 'dir'>> {
  const createdAt = opts.now().toISOString();
  const dbCopy = join(tmp, 'builder.sqlite');
  const src = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    src.pragma('busy_timeout = 5000');
    // the rest in one step: a step of the server's writes in between would start the copy over
    await src.backup(dbCopy, { progress: () => 1 << 30 });
  } finally {
    src.close();
  }
  const copy = new Database(dbCopy);
  let counts;
  const consoles = { files: 0, bytes: 0 };
  let blobs: Manifest['blobs'];
  let reused = 0;
  let linked = 0;
  let copied = 0;
  try {
    // one self-contained file (the server's WAL mode comes back when it opens the restored one)
    copy.pragma('journal_mode = DELETE');
    const check = quickCheck(copy);
    if (check !== 'ok') throw new Error(`the copied database fails SQLite's check: ${check}`);
    counts = databaseCounts(copy);

    const logs = new LogStore(opts.dataDir);
    await mkdir(join(tmp, 'logs'), { mode: 0o700 });
    for (const run of consoleExtents(copy)) {
      const bytes = await copyConsole(logs, run.id, isTerminal(run.state as RunState), run.logBytes, join(tmp, 'logs'));
      if (bytes !== undefined) {
        consoles.files++;
        consoles.bytes += bytes;
      }
    }

    if (opts.blobs instanceof LocalBlobStore) {
      const store = opts.blobs.dir;
      const missing: string[] = [];
      const damaged: string[] = [];
      let files = 0;
      let total = 0;
      for (const { sha256, size } of new ArtifactStore(copy).referencedBlobs()) {
        const key = blobKey(sha256);
        const dst = join(tmp, 'blobs', key);
        const old = previous && join(previous, 'blobs', key);
        if (old && (await sizeOf(old)) === size && (await placeVerified(old, dst, sha256, size)) !== 'damaged') {
          reused++;
        } else if ((await sizeOf(join(store, key))) !== size) {
          missing.push(sha256);
          continue;
        } else {
          const how = await placeVerified(join(store, key), dst, sha256, size, !opts.copy);
          if (how === 'damaged') {
            damaged.push(sha256);
            continue;
          }
          if (how === 'linked') linked++;
          else copied++;
        }
        files++;
        total += size;
      }
      blobs = { store: 'local', files, bytes: total, missing, damaged };
    } else {
      blobs = { store: 's3', location: opts.blobs.description };
    }
  } finally {
    copy.close();
  }
  const { sha256, size } = await hashFile(dbCopy);
  const manifest: Manifest = {
    kind: 'builder-backup',
    format: 1,
    createdAt,
    builderVersion: VERSION,
    database: { file: 'builder.sqlite', bytes: size, sha256, ...counts },
    consoles,
    blobs,
  };
  return { manifest, blobsReused: reused, blobsLinked: linked, blobsCopied: copied };
}

/**
 * Copy one run's console as the copied database knows it: a finished run's compressed file as it
 * is, else the first `logBytes` bytes (of the raw file, or of the compressed one if the run
 * finished and was compressed since the snapshot). Resolves to the bytes written, or undefined
 * when the run has no console.
 */
async function copyConsole(
  logs: LogStore,
  runId: string,
  finished: boolean,
  logBytes: number,
  to: string,
): Promise<number | undefined> {
  if (finished && !existsSync(logs.path(runId)) && existsSync(logs.gzPath(runId))) {
    return (await copyFileHashed(logs.gzPath(runId), join(to, basename(logs.gzPath(runId))))).size;
  }
  if (logBytes === 0 && !existsSync(logs.path(runId)) && !existsSync(logs.gzPath(runId))) return undefined;
  const fh = await open(join(to, basename(logs.path(runId))), 'wx', 0o600);
  try {
    let offset = 0;
    while (offset < logBytes) {
      const buf = logs.read(runId, offset, Math.min(CHUNK, logBytes - offset));
      if (buf.length === 0) break; // shorter on disk than recorded: copy what there is, as the server serves it
      await fh.write(buf, 0, buf.length, offset);
      offset += buf.length;
    }
    await fh.sync();
    return offset;
  } finally {
    await fh.close();
  }
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const st = await stat(path);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}
