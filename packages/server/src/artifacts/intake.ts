import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  ARTIFACT_LIMITS,
  type ArtifactFile,
  type Manifest,
  ManifestSchema,
  artifactPathProblem,
} from '@builder/protocol';
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
  /** Blobs that were new to the store (the rest were deduplicated). */
  stored: number;
}

interface Staged {
  file: ArtifactFile;
  tmp: string;
  out?: WriteStream;
}

const REGULAR = new Set(['File', 'OldFile', 'ContiguousFile']);

/**
 * Read one artifact frame (manifest + tar) from `body`: every file is staged in `tmpDir` while it
 * is hashed, checked against the manifest (name, order, size, SHA-256), and only when the whole
 * set is verified are the blobs handed to the store. On any refusal or broken transfer the staged
 * files are removed, so nothing half-written is kept; blobs stored before a later failure are
 * unreferenced and go with the next vacuum.
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
    await untar(body, rest, manifest, opts.tmpDir, staged);
    let stored = 0;
    const done = new Set<string>();
    for (const s of staged) {
      if (done.has(s.file.sha256)) {
        await rm(s.tmp, { force: true });
        continue;
      }
      done.add(s.file.sha256);
      if (!(await opts.blobs.has(s.file.sha256))) stored++;
      // put even when present: the local store's rename renews the blob's time, so a vacuum
      // running now sees it as fresh and leaves it until the run's rows are recorded
      await opts.blobs.put(s.file.sha256, s.tmp, s.file.size);
    }
    return { files: manifest.files, bytes: total, stored };
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

async function untar(body: Readable, head: Buffer, manifest: Manifest, tmpDir: string, staged: Staged[]) {
  async function* source(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    // not destroyed when the reader stops early: a refused sender is drained so it reads the answer
    for await (const chunk of body.iterator({ destroyOnReturn: false })) yield chunk as Buffer;
  }
  let index = 0;
  try {
    await readTar(source(), async (entry) => {
      const expected = manifest.files[index++];
      const name = JSON.stringify(entry.path.slice(0, 200));
      const problem = artifactPathProblem(entry.path.replace(/\/$/, ''));
      if (problem) throw refuse(`tar entry ${name}: ${problem}`);
      if (!REGULAR.has(entry.type)) {
        throw refuse(`tar entry ${name} is a ${entry.type}: only regular files can be artifacts`);
      }
      if (!expected) throw refuse(`tar entry ${name} is not in the manifest (it lists ${manifest.files.length})`);
      if (entry.path !== expected.path) {
        throw refuse(`tar entry ${index} is ${name}, but the manifest lists ${JSON.stringify(expected.path)}`);
      }
      if (entry.size !== expected.size) {
        throw refuse(`${expected.path}: the tar says ${entry.size} bytes, the manifest ${expected.size}`);
      }
      const staging: Staged = { file: expected, tmp: join(tmpDir, randomUUID()) };
      staged.push(staging);
      return stagingSink(staging);
    });
  } catch (err) {
    if (err instanceof TarFormatError) throw refuse(`the tar stream is malformed: ${err.message}`);
    throw err;
  }
  if (index < manifest.files.length) {
    throw refuse(`the tar ended after ${index} of the ${manifest.files.length} files in the manifest`);
  }
}

/** Write one entry to `tmp`, hashing as it goes; the hash must match the manifest. */
function stagingSink(staging: Staged): EntrySink {
  const expected = staging.file;
  const hash = createHash('sha256');
  // a deep buffer lets chunks that arrive during one write go out together in the next writev
  const out: WriteStream = createWriteStream(staging.tmp, { highWaterMark: 4 * 1024 * 1024 });
  staging.out = out;
  let failure: Error | undefined;
  out.once('error', (err) => (failure = err));
  return {
    async data(chunk) {
      if (failure) throw failure;
      hash.update(chunk);
      if (!out.write(chunk)) await once(out, 'drain');
    },
    async end() {
      await new Promise<void>((resolve, reject) => {
        out.once('error', reject);
        out.end(() => resolve());
      });
      const sha = hash.digest('hex');
      if (sha !== expected.sha256) {
        throw refuse(`${expected.path}: SHA-256 mismatch (manifest ${expected.sha256}, received ${sha})`);
      }
    },
  };
}
