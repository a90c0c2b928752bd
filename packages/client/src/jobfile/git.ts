import { execFile } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { dirname, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import type { JobDefinition } from '@builder/protocol';

const run = promisify(execFile);

async function git(cwd: string, ...args: string[]): Promise<string | null> {
  try {
    return (await run('git', args, { cwd })).stdout.trim();
  } catch {
    return null; // not a checkout, no origin, no commit yet, or no git at all
  }
}

/**
 * Where a job file is: its repository's origin (or the checkout's directory without one), the commit
 * checked out, the path from the top of the checkout, and whether the file differs from that commit.
 */
export async function definitionOf(file: string): Promise<JobDefinition> {
  const real = await realpath(file);
  const cwd = dirname(real);
  const top = await git(cwd, 'rev-parse', '--show-toplevel');
  if (top === null) return { repo: null, commit: null, path: real, modified: false };
  const path = relative(await realpath(top), real)
    .split(sep)
    .join('/');
  const repo = (await git(cwd, 'remote', 'get-url', 'origin')) ?? top;
  const commit = await git(cwd, 'rev-parse', '--verify', '-q', 'HEAD');
  const status = await git(top, 'status', '--porcelain', '--', path);
  const modified = commit === null || (status !== null && status !== '');
  const url = commit === null ? undefined : forgeUrl(repo, commit, path);
  return { repo, commit, path, modified, ...(url !== undefined && { url }) };
}

/** The web page of `path` at `commit` on GitHub, GitLab or Codeberg (Forgejo); undefined for other hosts. */
export function forgeUrl(repo: string, commit: string, path: string): string | undefined {
  // https://host/owner/name(.git), or scp-like git@host:owner/name(.git); credentials never kept
  const m =
    /^(?:https?|ssh|git):\/\/(?:[^@/]*@)?([^/:]+)(?::\d+)?\/(.+?)(?:\.git)?\/?$/.exec(repo) ??
    /^[^@/]+@([^:/]+):(.+?)(?:\.git)?\/?$/.exec(repo);
  if (!m) return undefined;
  const host = (m[1] ?? '').toLowerCase();
  const project = m[2] ?? '';
  const base = `https://${host}/${project}`;
  const file = path.split('/').map(encodeURIComponent).join('/');
  switch (host) {
    case 'github.com':
      return `${base}/blob/${commit}/${file}`;
    case 'gitlab.com':
      return `${base}/-/blob/${commit}/${file}`;
    case 'codeberg.org':
      return `${base}/src/commit/${commit}/${file}`;
    default:
      return undefined;
  }
}
