import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { Header, Pax } from 'tar';
import {
  ARTIFACTS_CONTENT_TYPE,
  ATTEMPT_SECRET_HEADER,
  type ArtifactFile,
  type ArtifactsReply,
  encodeManifest,
  MissingReplySchema,
} from '../artifacts.ts';
import { foreignAnswer } from '../net/foreign.ts';
import { certificateProblem, type Trust } from '../net/trust.ts';

/** A file to send: its artifact path, where to read it, and what the manifest says about it. */
export interface OutgoingFile extends ArtifactFile {
  source: string;
}

export interface SendOptions {
  url: string;
  /** `…/blobs/missing`: ask first and leave out what the server's store has. */
  missingUrl?: string;
  token: string;
  /** The secret of the attempt the files belong to (a worker's transfer; an admin upload has none). */
  attemptSecret?: string;
  files: readonly OutgoingFile[];
  /** Called as bytes go out (file bytes only, not tar framing); `total` counts only what is sent. */
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
  /** Extra CAs for an https:// server (`--ca`). */
  trust?: Trust;
}

/**
 * The server's answer; `status` 0 when it never answered (network failure). Codes of our own:
 * `NETWORK`, `CERTIFICATE` (the server's certificate was refused: retrying cannot help), `PROXY`
 * (something in front of the server answered), `BAD_REPLY`, `LOCAL`, `STORAGE_FULL`.
 */
export type SendResult = ArtifactsReply & { status: number };

const BLOCK = 512;
const READ_CHUNK = 1024 * 1024;

/** Size and SHA-256 of a file, streamed. */
export async function hashFile(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { size, sha256: hash.digest('hex') };
}

/**
 * The transfer body: manifest frame, then a tar of exactly those files under their artifact paths
 * (pax headers for long or non-ASCII names), read from disk as it is sent. A file whose size
 * changed since it was hashed ends the stream with an error instead of a lie.
 */
export function artifactStream(
  files: readonly OutgoingFile[],
  onBytes?: (n: number) => void,
  send: (f: OutgoingFile) => boolean = () => true,
): Readable {
  const manifest = { files: files.map(({ path, size, sha256 }) => ({ path, size, sha256 })) };
  async function* generate(): AsyncGenerator<Buffer> {
    yield encodeManifest(manifest);
    const mtime = new Date(0);
    for (const f of files) {
      if (!send(f)) continue;
      const data = { path: f.path, mode: 0o644, uid: 0, gid: 0, size: f.size, mtime, type: 'File' as const };
      const header = new Header(data);
      const block = Buffer.alloc(BLOCK);
      if (header.encode(block)) yield new Pax(data).encode();
      yield block;
      let sent = 0;
      for await (const chunk of createReadStream(f.source, { highWaterMark: READ_CHUNK }) as AsyncIterable<Buffer>) {
        sent += chunk.length;
        if (sent > f.size) break;
        onBytes?.(chunk.length);
        yield chunk;
      }
      if (sent !== f.size)
        throw new Error(`${f.path} changed while it was being sent (${sent} bytes, expected ${f.size})`);
      const pad = (BLOCK - (f.size % BLOCK)) % BLOCK;
      if (pad > 0) yield Buffer.alloc(pad);
    }
    yield Buffer.alloc(BLOCK * 2);
  }
  return Readable.from(generate(), { objectMode: false });
}

/**
 * PUT the files to `url`, each distinct content once and, with `missingUrl`, only what the store
 * lacks; resolves with the server's answer (never rejects on HTTP errors).
 */
export async function sendArtifacts(opts: SendOptions): Promise<SendResult> {
  const asked = opts.missingUrl ? await askMissing(opts.missingUrl, opts.token, opts.files, opts.trust) : undefined;
  // the server cannot store anything now (507, disk full): say so without sending a byte; a
  // refusal in the middle of a large body may reach the sender only as a broken connection
  if (asked && 'refused' in asked) return asked.refused;
  const lacking = asked?.lacking;
  // each distinct content once, and only what the server lacks
  const seen = new Set<string>();
  const toSend = new Set<OutgoingFile>();
  for (const f of opts.files) {
    if (seen.has(f.sha256)) continue;
    seen.add(f.sha256);
    if (lacking === undefined || lacking.has(f.sha256)) toSend.add(f);
  }
  const total = [...toSend].reduce((n, f) => n + f.size, 0);
  let sent = 0;
  const body = artifactStream(
    opts.files,
    (n) => {
      sent += n;
      opts.onProgress?.(sent, total);
    },
    (f) => toSend.has(f),
  );
  const u = new URL(opts.url);
  return await new Promise<SendResult>((resolve) => {
    let settled = false;
    const done = (r: SendResult) => {
      if (settled) return;
      settled = true;
      body.destroy();
      // an early refusal arrives while the body is still going out: stop sending
      if (!req.writableFinished) req.destroy();
      resolve(r);
    };
    const req = requestFor(u)(u, {
      method: 'PUT',
      headers: {
        'content-type': ARTIFACTS_CONTENT_TYPE,
        authorization: `Bearer ${opts.token}`,
        ...(opts.attemptSecret !== undefined && { [ATTEMPT_SECRET_HEADER]: opts.attemptSecret }),
      },
      signal: opts.signal,
      ...(opts.trust?.ca && { ca: [...opts.trust.ca] }),
    });
    req.on('response', (res: IncomingMessage) => {
      readText(res).then(
        (text) => {
          const foreign = foreignAnswer(res.statusCode ?? 0, res.headers, text);
          if (foreign !== undefined) {
            done({ ok: false, code: 'PROXY', error: foreign, status: res.statusCode ?? 0 });
            return;
          }
          try {
            done({ ...(JSON.parse(text) as ArtifactsReply), status: res.statusCode ?? 0 });
          } catch {
            const error = `the server answered ${res.statusCode}: ${text.slice(0, 200) || '(no body)'}`;
            done({ ok: false, code: 'BAD_REPLY', error, status: res.statusCode ?? 0 });
          }
        },
        (err: Error) => done({ ok: false, code: 'NETWORK', error: err.message, status: 0 }),
      );
    });
    req.on('error', (err) => done(networkFailure(err, u)));
    body.on('error', (err) => {
      req.destroy();
      done({ ok: false, code: 'LOCAL', error: err.message, status: 0 });
    });
    body.pipe(req);
  });
}

/**
 * The hashes the server lacks (`lacking` undefined when it cannot tell: then everything is sent),
 * or its refusal when it has no room for any (507).
 */
async function askMissing(
  url: string,
  token: string,
  files: readonly OutgoingFile[],
  trust: Trust | undefined,
): Promise<{ lacking: Set<string> | undefined } | { refused: SendResult }> {
  const blobs = new Map(files.map((f) => [f.sha256, f.size]));
  const body = JSON.stringify({ blobs: [...blobs].map(([sha256, size]) => ({ sha256, size })) });
  const u = new URL(url);
  return new Promise((resolve) => {
    const req = requestFor(u)(u, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      ...(trust?.ca && { ca: [...trust.ca] }),
    });
    req.on('response', (res) => {
      readText(res).then(
        (text) => {
          if (res.statusCode === 507) {
            let error = `the server answered 507: ${text.slice(0, 200)}`;
            try {
              error = String((JSON.parse(text) as { error?: unknown }).error ?? error);
            } catch {
              // not JSON: the status says enough
            }
            return resolve({ refused: { ok: false, code: 'STORAGE_FULL', error, status: 507 } });
          }
          try {
            const parsed = MissingReplySchema.safeParse(JSON.parse(text));
            resolve({ lacking: res.statusCode === 200 && parsed.success ? new Set(parsed.data.missing) : undefined });
          } catch {
            resolve({ lacking: undefined });
          }
        },
        () => resolve({ lacking: undefined }),
      );
    });
    req.on('error', (err) => {
      const failure = networkFailure(err, u);
      // no transfer can succeed with a certificate we refuse: say so now, not after the body
      resolve(failure.code === 'CERTIFICATE' ? { refused: failure } : { lacking: undefined });
    });
    req.end(body);
  });
}

/** A request that got no answer: a refused certificate is told apart from a network blip. */
function networkFailure(err: Error, u: URL): SendResult & { ok: false } {
  const certificate = certificateProblem(err, u.origin);
  if (certificate !== undefined) return { ok: false, code: 'CERTIFICATE', error: certificate, status: 0 };
  return { ok: false, code: 'NETWORK', error: err.message, status: 0 };
}

const requestFor = (u: URL) => (u.protocol === 'https:' ? httpsRequest : httpRequest);

/** The whole answer body as text. */
export function readText(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('error', reject);
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}
