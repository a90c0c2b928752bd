import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BlobStore } from '../artifacts/blob-store.ts';
import type { Logger } from '../log.ts';
import type { RepoPublisher } from '../repos/publisher.ts';
import type { IndexFile, RepoStore } from '../store/repos.ts';

/** What serving a repository's files needs: its generations, the index files and the blobs. */
export interface RepoFileDeps {
  repos: RepoStore;
  repoPublisher: Pick<RepoPublisher, 'keys' | 'keysNow'>;
  repoFilesDir: string;
  blobs: BlobStore;
  logger: Logger;
}

/** `/repo/key.asc`, `/repo/key.gpg` (binary, for apt's signed-by) and `/repo/pkg-key.pem` (FreeBSD pkg's pubkey). */
export function repoKey(
  ctx: RepoFileDeps,
  req: IncomingMessage,
  res: ServerResponse,
  _url: URL,
  [file = '']: readonly string[],
): void {
  ctx.repoPublisher.keys.then(
    (keys) => {
      const [type, body] =
        file === 'key.asc'
          ? ['application/pgp-keys', Buffer.from(keys.armored)]
          : file === 'key.gpg'
            ? ['application/octet-stream', keys.binary]
            : ['application/x-pem-file', Buffer.from(keys.pkgPublicPem)];
      res.writeHead(200, {
        'content-type': type,
        'content-length': body.length,
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    },
    (err: unknown) => {
      ctx.logger.error('repo.keys_failed', { error: String(err) });
      res
        .writeHead(503, { 'content-type': 'text/plain; charset=utf-8' })
        .end('the repository keys are not available\n');
    },
  );
}

/**
 * A file of a repository: an index of its current generation (`dists/SUITE/InRelease`, `pkg/ABI/meta.conf` …),
 * an index of a kept generation by its hash (`…/by-hash/SHA256/H`), or a package file from the
 * artifact store (`pool/…`, `pkg/ABI/All/…`), streamed from the run's blob, never copied.
 */
export function repoFile(
  ctx: RepoFileDeps,
  req: IncomingMessage,
  res: ServerResponse,
  _url: URL,
  [name = '', rest = '']: readonly string[],
): void {
  let path: string;
  let repoName: string;
  try {
    repoName = decodeURIComponent(name);
    path = rest.split('/').map(decodeURIComponent).join('/');
  } catch {
    return notFound(res, 'malformed percent-encoding in the URL');
  }
  const repo = ctx.repos.get(repoName);
  if (!repo) return notFound(res, `no repository named ${repoName}`);
  const generations = ctx.repos.generations(repo.id).reverse();
  const current = generations[0];
  if (!current) return notFound(res, `repository ${repoName} has no index yet`);
  const index = current.files[path];
  if (index) return void sendIndex(ctx, req, res, index, path, false);
  const byHash = /^(.+)\/by-hash\/SHA256\/([0-9a-f]{64})$/.exec(path);
  if (byHash) {
    for (const g of generations) {
      for (const [p, f] of Object.entries(g.files)) {
        if (f.sha256 === byHash[2] && p.slice(0, p.lastIndexOf('/')) === byHash[1]) {
          return void sendIndex(ctx, req, res, f, p, true);
        }
      }
    }
    return notFound(res, `no index of ${repoName} with that hash (older generations are not kept)`);
  }
  for (const g of generations) {
    const pkg = g.packages.find((p) => p.filename === path);
    if (pkg) return void sendPackage(ctx, req, res, pkg.sha256, pkg.size, path);
  }
  notFound(res, `repository ${repoName} has no file ${path}`);
}

async function sendIndex(
  ctx: RepoFileDeps,
  req: IncomingMessage,
  res: ServerResponse,
  f: IndexFile,
  path: string,
  immutable: boolean,
): Promise<void> {
  const file = join(ctx.repoFilesDir, f.sha256);
  if (
    !(await stat(file).then(
      (st) => st.size === f.size,
      () => false,
    ))
  ) {
    // lost or cut short: the server writes it again at its next start (a restart does it now)
    ctx.logger.error('repo.index_missing', { path, sha256: f.sha256 });
    res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '60' });
    return void res.end(`${path} is not available: its index file is missing from the data dir\n`);
  }
  const text = /(^|\/)(InRelease|Release|Release\.gpg|Packages|meta\.conf|meta)$/.test(path);
  res.writeHead(200, {
    'content-type': text ? 'text/plain; charset=utf-8' : 'application/octet-stream',
    'content-length': f.size,
    etag: `"${f.sha256}"`,
    'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    'x-content-type-options': 'nosniff',
  });
  if (req.method === 'HEAD') return void res.end();
  try {
    await pipeline(createReadStream(file), res);
  } catch (err) {
    ctx.logger.error('repo.index_unreadable', { path, sha256: f.sha256, error: String(err) });
    res.destroy();
  }
}

async function sendPackage(
  ctx: RepoFileDeps,
  req: IncomingMessage,
  res: ServerResponse,
  sha256: string,
  size: number,
  path: string,
): Promise<void> {
  const headers = {
    'content-type': path.endsWith('.deb') ? 'application/vnd.debian.binary-package' : 'application/octet-stream',
    'content-length': size,
    etag: `"${sha256}"`,
    'cache-control': 'public, max-age=31536000, immutable',
    'x-content-type-options': 'nosniff',
    'content-security-policy': "default-src 'none'; sandbox",
  };
  if (req.method === 'HEAD') return void res.writeHead(200, headers).end();
  try {
    const body = await ctx.blobs.open(sha256, size);
    res.writeHead(200, headers);
    await pipeline(body, res);
  } catch (err) {
    if (res.headersSent) return void res.destroy();
    ctx.logger.error('repo.package_unreadable', { path, sha256, error: String(err) });
    res
      .writeHead(410, { 'content-type': 'text/plain; charset=utf-8' })
      .end(`the bytes of ${path} are gone from the artifact store\n`);
  }
}

function notFound(res: ServerResponse, why: string): void {
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`${why}\n`);
}
