import Database from 'better-sqlite3';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { blobKey, type BlobStore } from '../artifacts/blob-store.ts';
import { LocalBlobStore, syncDir } from '../artifacts/local-blobs.ts';
import { ArtifactStore } from '../store/artifacts.ts';
import { databaseCounts, quickCheck } from '../store/backup-queries.ts';
import { copyFileHashed, hashFile, syncTree } from './files.ts';
import { BadBackupError, type Manifest, readManifest } from './manifest.ts';

export interface RestoreOptions {
  from: string;
  dataDir: string;
  /** Where the restored server keeps its blobs (DATA/artifacts/blobs unless --artifacts says otherwise). */
  blobs: BlobStore;
}

export interface RestoreReport {
  manifest: Manifest;
  blobs: number;
  consoles: number;
}

/** The data dir is in use: restoring there would mix two servers' data. */
export class NotEmptyError extends Error {}

const STAGING = '.restoring';

/**
 * Restore a backup into an empty (or new) data dir: check the manifest, the database's hash and
 * SQLite's own check, the consoles the manifest counts and every blob the database refers to
 * (hash checked while copied); staged in DATA/.restoring and moved in place when all of it is
 * there, the database last. Throws BadBackupError when the backup does not hold what it says.
 */
export async function restoreBackup(opts: RestoreOptions): Promise<RestoreReport> {
  const from = resolve(opts.from);
  const dataDir = resolve(opts.dataDir);
  const manifest = readManifest(from);
  let names: string[] = [];
  try {
    names = readdirSync(dataDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (names.length > 0) {
    throw new NotEmptyError(
      `--data-dir ${dataDir} is not empty (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''}): ` +
        'restore only into a new or empty data dir (move the old one aside first)',
    );
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const stage = join(dataDir, STAGING);
  await mkdir(stage, { mode: 0o700 });
  try {
    const db = await checkDatabase(from, manifest, stage);
    let blobs = 0;
    let consoles = 0;
    try {
      consoles = await copyConsoles(from, manifest, stage);
      if (manifest.blobs.store === 'local' && opts.blobs instanceof LocalBlobStore) {
        blobs = await copyBlobs(from, manifest, new ArtifactStore(db), join(stage, 'blobs'));
      }
    } finally {
      db.close();
    }
    await syncTree(stage);
    // into place: consoles and blobs first, the database (what makes the dir a server's) last
    await rename(join(stage, 'logs'), join(dataDir, 'logs'));
    if (existsSync(join(stage, 'blobs')) && opts.blobs instanceof LocalBlobStore) {
      await moveBlobs(join(stage, 'blobs'), opts.blobs.dir);
    }
    await rename(join(stage, 'builder.sqlite'), join(dataDir, 'builder.sqlite'));
    await rm(stage, { recursive: true, force: true });
    await syncDir(dataDir);
    return { manifest, blobs, consoles };
  } catch (err) {
    // nothing half restored stays behind to be mistaken for a data dir
    await rm(stage, { recursive: true, force: true });
    // (the dir was empty: everything in it is this restore's)
    for (const name of await readdir(dataDir)) await rm(join(dataDir, name), { recursive: true, force: true });
    throw err;
  }
}

async function checkDatabase(from: string, manifest: Manifest, stage: string): Promise<Database.Database> {
  const file = join(stage, 'builder.sqlite');
  let got;
  try {
    got = await copyFileHashed(join(from, 'builder.sqlite'), file);
  } catch (err) {
    throw new BadBackupError(`${join(from, 'builder.sqlite')}: ${(err as Error).message}`);
  }
  if (got.sha256 !== manifest.database.sha256 || got.size !== manifest.database.bytes) {
    throw new BadBackupError(
      `${join(from, 'builder.sqlite')} is not the database the backup recorded (${got.size} bytes, ` +
        `${manifest.database.bytes} expected, or another hash): the backup is damaged`,
    );
  }
  const db = new Database(file);
  const check = quickCheck(db);
  const counts = databaseCounts(db);
  if (check !== 'ok' || counts.runs !== manifest.database.runs || counts.jobs !== manifest.database.jobs) {
    db.close();
    throw new BadBackupError(`the backed-up database fails its checks: ${check}, ${counts.runs} runs`);
  }
  return db;
}

async function copyConsoles(from: string, manifest: Manifest, stage: string): Promise<number> {
  let names: string[] = [];
  try {
    names = await readdir(join(from, 'logs'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(join(stage, 'logs'), { mode: 0o700 });
  let bytes = 0;
  for (const name of names) bytes += (await copyFileHashed(join(from, 'logs', name), join(stage, 'logs', name))).size;
  if (names.length !== manifest.consoles.files || bytes !== manifest.consoles.bytes) {
    throw new BadBackupError(
      `${join(from, 'logs')} holds ${names.length} consoles of ${bytes} bytes, the manifest ` +
        `${manifest.consoles.files} of ${manifest.consoles.bytes}: the backup is damaged`,
    );
  }
  return names.length;
}

/** Every blob the database refers to, hash checked; those the backup itself lacked stay missing. */
async function copyBlobs(from: string, manifest: Manifest, artifacts: ArtifactStore, to: string): Promise<number> {
  const known =
    manifest.blobs.store === 'local' ? new Set([...manifest.blobs.missing, ...manifest.blobs.damaged]) : new Set();
  let n = 0;
  for (const { sha256, size } of artifacts.referencedBlobs()) {
    if (known.has(sha256)) continue;
    const key = blobKey(sha256);
    let got;
    try {
      got = await copyFileHashed(join(from, 'blobs', key), join(to, key));
    } catch (err) {
      throw new BadBackupError(`blob ${sha256} is missing from the backup: ${(err as Error).message}`);
    }
    if (got.sha256 !== sha256 || got.size !== size) {
      throw new BadBackupError(`blob ${sha256} in the backup is damaged (${got.size} bytes, ${size} expected)`);
    }
    n++;
  }
  return n;
}

/** Blobs into the store's directory (which may be outside the data dir, or hold blobs already). */
async function moveBlobs(staged: string, store: string): Promise<void> {
  await mkdir(store, { recursive: true, mode: 0o700 });
  for (const prefix of await readdir(staged)) {
    await mkdir(join(store, prefix), { recursive: true });
    for (const name of await readdir(join(staged, prefix))) {
      const target = join(store, prefix, name);
      const st = await stat(target).catch(() => undefined);
      // content-addressed: a blob already there is the same bytes if its hash says so
      if (st && (await hashFile(target)).sha256 === name) continue;
      try {
        await rename(join(staged, prefix, name), target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        await copyFileHashed(join(staged, prefix, name), `${target}.restoring`);
        await rename(`${target}.restoring`, target);
      }
    }
    await syncDir(join(store, prefix));
  }
}
