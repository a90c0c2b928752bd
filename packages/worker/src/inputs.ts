import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname, join } from 'node:path';
import { finished } from 'node:stream/promises';
import {
  ATTEMPT_SECRET_HEADER,
  artifactPathProblem,
  artifactUrlPath,
  formatBytes,
  type Assignment,
  type InputFile,
} from '@builder/protocol';
import { readText } from '@builder/protocol/transfer';
import type { ArtifactTarget } from './artifacts.ts';

/** An input that could not be placed: the run ends `error` with this message, never `failed`. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/**
 * Fetch the run's inputs into `dir` (outside any sandbox), each from `GET /inputs/RUN/ATTEMPT/NAME`
 * with the worker's token and the attempt's secret, hashed as it arrives: a file whose size or
 * SHA-256 is not what the assignment says is deleted and the run does not start.
 */
export async function fetchInputs(
  job: Pick<Assignment, 'runId' | 'attempt' | 'attemptSecret' | 'inputs'>,
  dir: string,
  target: Pick<ArtifactTarget, 'base' | 'token' | 'trust' | 'attempts' | 'retryBaseMs'>,
  opts: { signal?: AbortSignal; note?: (text: string) => void } = {},
): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  let bytes = 0;
  for (const f of job.inputs) {
    const problem = artifactPathProblem(f.name);
    if (problem) throw new InputError(`input ${JSON.stringify(f.name)}: ${problem}`);
    const url = `${target.base}/inputs/${job.runId}/${job.attempt}/${artifactUrlPath(f.name)}`;
    for (let i = 1; ; i++) {
      try {
        await fetchOne(url, f, join(dir, f.name), target, job.attemptSecret, opts.signal);
        break;
      } catch (err) {
        // a refusal or a wrong hash is final; a broken connection or a server error may pass
        if (err instanceof InputError || i >= target.attempts || opts.signal?.aborted) {
          throw err instanceof InputError ? err : new InputError(`input ${f.name}: ${(err as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, target.retryBaseMs * 2 ** (i - 1)));
      }
    }
    bytes += f.size;
  }
  const n = job.inputs.length;
  opts.note?.(`[builder] inputs: ${n} file${n === 1 ? '' : 's'}, ${formatBytes(bytes)}, SHA-256 checked`);
}

class Transient extends Error {}

async function fetchOne(
  url: string,
  f: InputFile,
  target: string,
  server: Pick<ArtifactTarget, 'token' | 'trust'>,
  secret: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  await mkdir(dirname(target), { recursive: true, mode: 0o755 });
  const part = `${target}.part`;
  const res = await get(url, server, secret, signal);
  if (res.statusCode !== 200) {
    const text = await readText(res);
    let error = text.slice(0, 300);
    try {
      error = String((JSON.parse(text) as { error?: unknown }).error ?? error);
    } catch {
      // not JSON: the status says enough
    }
    const status = res.statusCode ?? 0;
    if (status >= 500 && status !== 507) throw new Transient(`the server answered ${status}: ${error}`);
    throw new InputError(`input ${f.name}: the server answered ${status}: ${error}`);
  }
  const hash = createHash('sha256');
  let size = 0;
  const out = createWriteStream(part, { mode: 0o644 });
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      if (size > f.size) break;
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
    out.end();
    await finished(out);
  } catch (err) {
    out.destroy();
    await rm(part, { force: true });
    throw new Transient((err as Error).message);
  }
  const sha = hash.digest('hex');
  if (size !== f.size || sha !== f.sha256) {
    await rm(part, { force: true });
    throw new InputError(
      `input ${f.name} does not match its checksum (got ${size} bytes, sha256 ${sha}; expected ${f.size} bytes, ${f.sha256})`,
    );
  }
  await rename(part, target);
}

function get(
  url: string,
  server: Pick<ArtifactTarget, 'token' | 'trust'>,
  secret: string,
  signal: AbortSignal | undefined,
): Promise<IncomingMessage> {
  const u = new URL(url);
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(u, {
      method: 'GET',
      headers: { authorization: `Bearer ${server.token}`, [ATTEMPT_SECRET_HEADER]: secret },
      // a private CA given with --ca
      ...(server.trust?.ca && { ca: [...server.trust.ca] }),
      ...(signal && { signal }),
    });
    req.on('response', resolve);
    req.on('error', reject);
    req.end();
  });
}
