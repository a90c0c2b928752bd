import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, fdatasync as fdatasyncCb, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import {
  ARTIFACT_LIMITS,
  type ArtifactFile,
  type Manifest,
  ManifestSchema,
  artifactPathProblem,
} from '@builder/protocol';
import { bulkBuffers } from '@builder/protocol/net';
import type { BlobStore } from './blob-store.ts';
import { type EntrySink, readTar, TarFormatError } from './tar-reader.ts';

/** Why a transfer was refused; `status` is the HTTP status the sender gets. */
export class ArtifactsRefused extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ArtifactsRefused';
    this.status = status;
    this.code = code;
  }
}

const refuse = (message: string) => new ArtifactsRefused(422, 'ARTIFACTS_REFUSED', message);

export interface Received {
  files: ArtifactFile[];
  bytes: number;
  /** File bytes that travelled in the tar (files the store had already were not sent). */
  sent: number;
  /** Blobs that were new to the store (the rest were deduplicated). */
  stored: number;
}

interface Staged {
  file: ArtifactFile;
  tmp: string;
  out?: WriteStream;
}

const REGULAR = new Set(['File', 'OldFile', 'ContiguousFile']);
/** Bytes staged between two background flushes of a file being received. */
const SYNC_EVERY = 64 * 1024 * 1024;
const fdatasync = promisify(fdatasyncCb);

/**
 * Read one artifact frame (manifest + tar) from `body`. The tar holds the manifest's files in its
 * order, except those whose bytes the store already has (the sender asked `POST /blobs/missing`
 * first). Each file is staged in `tmpDir` while it is hashed and must match the manifest (name,
 * order, size, SHA-256); a verified file goes to the blob store at once, so a broken transfer that
 * is retried sends only what is still missing. The run's file list is recorded by the caller only
 * when the whole set is there: a refused or broken transfer leaves no half-written file and no
 * artifact rows, at most whole unreferenced blobs that the next vacuum removes.
 */
export async function receiveArtifacts(
  body: Readable,
  opts: { tmpDir: string; blobs: BlobStore; maxBytes: number },
): Promise<Received> {
  const staged: Staged[] = [];
  try {
    const { manifest, rest } = await readManifest(body);
    const total = manifest.files.reduce((n, f) => n + f.size, 0);
    if (total > opts.maxBytes) {
      throw new ArtifactsRefused(
        413,
        'ARTIFACTS_TOO_LARGE',
        `the artifacts add up to ${total} bytes, over the server's limit of ${opts.maxBytes} (--artifact-limit)`,
      );
    }
    const got = { sent: 0, stored: 0, shas: new Set<string>() };
    await untar(body, rest, manifest, { ...opts, staged, got });
    for (const f of manifest.files) {
      if (got.shas.has(f.sha256)) continue;
      if (!(await opts.blobs.has(f.sha256, f.size))) {
        throw refuse(`${f.path} was not sent and the store does not have its bytes (sha256 ${f.sha256})`);
      }
      got.shas.add(f.sha256);
    }
    return { files: manifest.files, bytes: total, sent: got.sent, stored: got.stored };
  } catch (err) {
    if (!body.readableEnded) body.resume();
    throw err;
  } finally {
    for (const s of staged) s.out?.destroy();
    await Promise.all(staged.map((s) => rm(s.tmp, { force: true })));
  }
}

/** The frame head: 4-byte length, manifest JSON. Returns what was read past it. */
function readManifest(body: Readable): Promise<{ manifest: Manifest; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const finish = (err: Error | undefined, value?: { manifest: Manifest; rest: Buffer }) => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.pause();
      if (err) reject(err);
      else resolve(value!);
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (buf.length < 4) return;
      const len = buf.readUInt32BE(0);
      if (len > ARTIFACT_LIMITS.maxManifestBytes) {
        finish(refuse(`the manifest is ${len} bytes, over the limit of ${ARTIFACT_LIMITS.maxManifestBytes}`));
        return;
      }
      if (buf.length < 4 + len) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(buf.subarray(4, 4 + len).toString('utf8'));
      } catch {
        finish(refuse('the manifest is not valid JSON'));
        return;
      }
      const result = ManifestSchema.safeParse(parsed);
      if (!result.success) {
        const issue = result.error.issues[0];
        const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
        finish(refuse(`the manifest is invalid: ${where}${issue?.message ?? 'unknown problem'}`));
        return;
      }
      finish(undefined, { manifest: result.data, rest: buf.subarray(4 + len) });
    };
    const onEnd = () => finish(refuse('the transfer ended before the manifest'));
    const onError = (err: Error) => finish(err);
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
  });
}

interface UntarState {
  tmpDir: string;
  blobs: BlobStore;
  staged: Staged[];
  got: { sent: number; stored: number; shas: Set<string> };
}

async function untar(body: Readable, head: Buffer, manifest: Manifest, st: UntarState) {
  async function* source(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    // not destroyed when the reader stops early: a refused sender is drained so it reads the answer
    for await (const chunk of body.iterator({ destroyOnReturn: false })) {
      // garbage once written: collected young (buffer-churn.ts)
      bulkBuffers.add((chunk as Buffer).length);
      yield chunk as Buffer;
    }
  }
  let next = 0;
  try {
    await readTar(source(), async (entry) => {
      const name = JSON.stringify(entry.path.slice(0, 200));
      const problem = artifactPathProblem(entry.path.replace(/\/$/, ''));
      if (problem) throw refuse(`tar entry ${name}: ${problem}`);
      if (!REGULAR.has(entry.type)) {
        throw refuse(`tar entry ${name} is a ${entry.type}: only regular files can be artifacts`);
      }
      // entries come in manifest order; files the store already has may be left out
      let i = next;
      while (i < manifest.files.length && manifest.files[i]!.path !== entry.path) i++;
      const expected = manifest.files[i];
      if (!expected) throw refuse(`tar entry ${name} is not in the manifest, or out of its order`);
      next = i + 1;
      if (entry.size !== expected.size) {
        throw refuse(`${expected.path}: the tar says ${entry.size} bytes, the manifest ${expected.size}`);
      }
      const staging: Staged = { file: expected, tmp: join(st.tmpDir, randomUUID()) };
      st.staged.push(staging);
      return stagingSink(staging, async () => {
        st.got.sent += expected.size;
        if (st.got.shas.has(expected.sha256)) return void (await rm(staging.tmp, { force: true }));
        st.got.shas.add(expected.sha256);
        // put even when present: the local store's rename renews the blob's time, so a vacuum
        // running now sees it as fresh and leaves it until the run's rows are recorded
        if (await st.blobs.put(expected.sha256, staging.tmp, expected.size)) st.got.stored++;
      });
    });
  } catch (err) {
    if (err instanceof TarFormatError) throw refuse(`the tar stream is malformed: ${err.message}`);
    throw err;
  }
}

/**
 * Write one entry to `tmp`, hashing as it goes; the hash must match the manifest. Every write must
 * have succeeded: a write that failed (a full disk) would leave a short file under the right hash.
 */
function stagingSink(staging: Staged, verified: () => Promise<void>): EntrySink {
  const expected = staging.file;
  const hash = createHash('sha256');
  // a deep buffer lets chunks that arrive during one write go out together in the next writev
  const out: WriteStream = createWriteStream(staging.tmp, { highWaterMark: 4 * 1024 * 1024 });
  staging.out = out;
  let failure: Error | undefined;
  out.once('error', (err) => (failure = err));
  // like RocksDB's bytes_per_sync: writeback starts while the transfer goes on, so the fsync that
  // precedes storing the blob has little left to do (the kernel alone would wait for gigabytes)
  let syncedTo = 0;
  let syncing: Promise<void> | undefined;
  let fd: number | undefined;
  out.once('open', (n: number) => (fd = n));
  return {
    async data(chunk) {
      if (failure) throw failure;
      hash.update(chunk);
      if (!out.write(chunk)) await once(out, 'drain');
      if (syncing === undefined && out.bytesWritten - syncedTo >= SYNC_EVERY && fd !== undefined) {
        syncedTo = out.bytesWritten;
        syncing = fdatasync(fd)
          .catch((err: Error) => void (failure ??= err))
          .finally(() => (syncing = undefined));
      }
    },
    async end() {
      await syncing;
      // the last writes are still in flight here: their error comes to end's callback
      const ended = await new Promise<Error | null | undefined>((resolve) => out.end(resolve));
      const err = failure ?? ended;
      if (err) throw new Error(`staging ${expected.path} failed: ${err.message}`, { cause: err });
      if (out.bytesWritten !== expected.size) {
        throw new Error(`staging ${expected.path} wrote ${out.bytesWritten} of ${expected.size} bytes`);
      }
      const sha = hash.digest('hex');
      if (sha !== expected.sha256) {
        throw refuse(`${expected.path}: SHA-256 mismatch (manifest ${expected.sha256}, received ${sha})`);
      }
      await verified();
    },
  };
}
