import { z } from 'zod';

/**
 * Artifacts travel over HTTP, not the WebSocket: `PUT /artifacts/RUN/ATTEMPT` (a worker, for its
 * run) or `PUT /upload/JOB` (an admin, a manual run). The body is one frame: a 4-byte big-endian
 * manifest length, the manifest as JSON, then a tar stream holding exactly the manifest's files in
 * its order. The manifest carries size and SHA-256 per file, computed by the sender; the server
 * hashes what arrives and refuses the whole set on any difference.
 */
export const ARTIFACTS_CONTENT_TYPE = 'application/x-builder-artifacts';
/** A worker's transfer carries the attempt's secret (from its assignment) in this header. */
export const ATTEMPT_SECRET_HEADER = 'x-builder-attempt-secret';

export const ARTIFACT_LIMITS = {
  maxManifestBytes: 16 * 1024 * 1024,
  maxFiles: 100_000,
  maxPathLength: 4096,
  /** Default refusal point for one run's artifacts (the server's `--artifact-limit`). */
  defaultMaxRunBytes: 8 * 1024 ** 3,
} as const;

export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

/**
 * Why `path` cannot name an artifact, or undefined when it can. Artifact paths are relative,
 * `/`-separated, normalized and stay inside the output dir.
 */
export function artifactPathProblem(path: string): string | undefined {
  if (path.length === 0) return 'the path is empty';
  if (path.length > ARTIFACT_LIMITS.maxPathLength) return `the path is longer than ${ARTIFACT_LIMITS.maxPathLength}`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'the path contains control characters';
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return 'the path is absolute';
  if (path.includes('\\')) return 'the path contains a backslash';
  for (const part of path.split('/')) {
    if (part === '..') return 'the path escapes the output dir (..)';
    if (part === '' || part === '.') return 'the path is not normalized (empty or . component)';
  }
  return undefined;
}

export const ArtifactPathSchema = z.string().superRefine((p, ctx) => {
  const problem = artifactPathProblem(p);
  if (problem) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(p.slice(0, 200))}: ${problem}` });
});

export const ArtifactFileSchema = z.object({
  path: ArtifactPathSchema,
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(SHA256_PATTERN, 'sha256 must be 64 lower-case hex digits'),
});
export type ArtifactFile = z.infer<typeof ArtifactFileSchema>;

export const ManifestSchema = z
  .object({ files: z.array(ArtifactFileSchema).max(ARTIFACT_LIMITS.maxFiles) })
  .superRefine((m, ctx) => {
    const seen = new Set<string>();
    for (const f of m.files) {
      if (seen.has(f.path)) ctx.addIssue({ code: 'custom', message: `${f.path} is listed twice` });
      seen.add(f.path);
    }
  });
export type Manifest = z.infer<typeof ManifestSchema>;

/** The frame head that precedes the tar stream. */
export function encodeManifest(manifest: Manifest): Buffer {
  const json = Buffer.from(JSON.stringify(manifest), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(json.length, 0);
  return Buffer.concat([head, json]);
}

/** The answer to a refused or failed artifact transfer, and to a successful one. */
export const ArtifactsReplySchema = z.union([
  z.object({
    ok: z.literal(true),
    files: z.number().int(),
    bytes: z.number().int(),
    /** File bytes that travelled (the rest the store had). */
    sent: z.number().int(),
    stored: z.number().int(),
  }),
  z.object({ ok: z.literal(false), code: z.string(), error: z.string() }),
]);
export type ArtifactsReply = z.infer<typeof ArtifactsReplySchema>;

/**
 * `POST /blobs/missing` (worker or admin token): which of these blobs the store lacks. A sender
 * asks before a transfer and leaves out the files the server has, so unchanged artifacts and the
 * files of an interrupted transfer are not sent again. The size comes along because a stored blob
 * of another size (cut short by a full disk) counts as missing and is sent again. A sender whose
 * question is refused (an older one, without sizes) sends everything.
 */
export const MissingRequestSchema = z.object({
  blobs: z
    .array(
      z.object({
        sha256: z.string().regex(SHA256_PATTERN, 'sha256 must be 64 lower-case hex digits'),
        size: z.number().int().min(0),
      }),
    )
    .max(ARTIFACT_LIMITS.maxFiles),
});
export const MissingReplySchema = z.object({ missing: z.array(z.string()) });

/** `512 B`, `1.2 MiB`, `37 GiB`: sizes as every program shows them (powers of 1024). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) ((v /= 1024), u++);
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** Percent-encode each path segment for use in a URL. */
export function artifactUrlPath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/**
 * The HTTP base of a server from the URL a user gives (`http://h:p`, `ws://h:p/ws`,
 * `https://h/builder`): http(s), a reverse-proxy path prefix kept, no trailing `/ws` or slash.
 */
export function httpBase(remote: string): string {
  const u = new URL(remote);
  const protocol = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
  const path = u.pathname.replace(/\/ws\/?$/, '').replace(/\/+$/, '');
  return `${protocol}//${u.host}${path}`;
}
