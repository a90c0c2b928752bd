import type { ArtifactTarget } from './artifacts.ts';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LIMITS, NameSchema, httpBase } from '@builder/protocol';
import { loadTrust, TrustFileError } from '@builder/protocol/net';
import type { ConnectionOptions } from './connection.ts';
import type { ConsoleOptions } from './console.ts';
import { UsageError } from './errors.ts';
import { type ExecutorName, EXECUTORS, isExecutorName } from './executors/index.ts';
import { type ChrootOptions, type ChrootOptionsInput, compileChrootOptions } from './executors/chroot-options.ts';
import { compileJailOptions, type JailOptions, type JailOptionsInput } from './executors/jail-options.ts';

/** What a caller (the CLI, a test) may set; numbers may come as strings from argv. */
export interface WorkerOptionsInput {
  remote?: string | undefined;
  token?: string | undefined;
  platform?: string | undefined;
  name?: string | undefined;
  labels?: readonly string[] | undefined;
  capacity?: number | string | undefined;
  executor?: string | undefined;
  workDir?: string | undefined;
  /** The `--jail-*` flags; only with --executor jail. */
  jail?: JailOptionsInput | undefined;
  /** `--root`, `--chroot-user` and the limits; only with --executor chroot. */
  chroot?: ChrootOptionsInput | undefined;
  reconnectMaxMs?: number | string | undefined;
  reconnectMinMs?: number | undefined;
  /** undefined: JSON unless stderr is a terminal. */
  jsonLogs?: boolean | undefined;
  windowBytes?: number | undefined;
  flushBytes?: number | undefined;
  flushMs?: number | undefined;
  helloTimeoutMs?: number | undefined;
  /** On a forced stop, how long to wait for the results to be acknowledged. */
  shutdownAckTimeoutMs?: number | undefined;
  /** `--git-timeout`: longest a fetch of a job's source may take, in seconds. */
  gitTimeoutSec?: number | string | undefined;
  /** `--git-mirror-days`: a source mirror no run used for this long is removed (0: never). */
  gitMirrorDays?: number | string | undefined;
  /** `--ca FILE`: a CA to trust for an https:// remote. */
  ca?: string | undefined;
  /** `--keepalive SECONDS`: ping the server at least this often (default 25). */
  keepaliveSec?: number | string | undefined;
}

/** Every option resolved and checked; the rest of the worker takes only this. */
export interface WorkerOptions {
  readonly remote: string;
  readonly name: string;
  readonly platform: string;
  readonly labels: readonly string[];
  readonly capacity: number;
  readonly executor: ExecutorName;
  readonly workDir: string;
  /** Set exactly when executor is `jail`. */
  readonly jail: JailOptions | undefined;
  /** Set exactly when executor is `chroot`. */
  readonly chroot: ChrootOptions | undefined;
  readonly jsonLogs: boolean | undefined;
  readonly connection: ConnectionOptions;
  readonly console: ConsoleOptions;
  readonly shutdownAckTimeoutMs: number;
  readonly gitTimeoutMs: number;
  /** A source mirror unused for this long is removed (at start, then daily); 0: kept forever. */
  readonly gitMirrorMaxAgeMs: number;
  /** Where the runs' output dirs are sent. */
  readonly artifacts: ArtifactTarget;
}

export const DEFAULTS = {
  capacity: 1,
  executor: 'host',
  reconnectMinMs: 100,
  reconnectMaxMs: 10_000,
  windowBytes: 8 * 1024 * 1024,
  // every frame costs both sides (ws framing, a write to the console file, a kernel copy each way):
  // against 64 KiB this took a fifth to a quarter off the CPU of a 200 MiB console on either side;
  // with the quarter more a batch may hold (console.ts) it stays under LIMITS.maxChunkBytes
  flushBytes: 192 * 1024,
  flushMs: 5,
  helloTimeoutMs: 10_000,
  shutdownAckTimeoutMs: 5_000,
  gitTimeoutSec: 600,
  gitMirrorDays: 30,
  // under the idle timeouts of common proxies (nginx: 60 s) whatever the server's lease
  keepaliveSec: 25,
} as const;

export function compileOptions(input: WorkerOptionsInput): WorkerOptions {
  const remote = required(input.remote, '--remote (or BUILDER_REMOTE) is required, e.g. --remote http://server:8330');
  const token = required(input.token, '--token (or BUILDER_TOKEN) is required: a token with the worker role');
  const platform = name(required(input.platform, '--platform is required, e.g. --platform debian-12'), '--platform');
  const workerName = name(input.name ?? defaultName(), '--name');
  const labels = [...new Set((input.labels ?? []).map((l) => name(l, '--label')))];
  if (labels.length > 64) throw new UsageError('at most 64 --label options');
  const executor = input.executor ?? DEFAULTS.executor;
  if (!isExecutorName(executor)) {
    throw new UsageError(`unknown --executor "${executor}" (known: ${Object.keys(EXECUTORS).join(', ')})`);
  }
  const capacity = integer(input.capacity ?? DEFAULTS.capacity, '--capacity', 1, LIMITS.maxRunningPerWorker);
  const jailFlags = Object.values(input.jail ?? {}).some((v) => v !== undefined);
  if (jailFlags && executor !== 'jail') throw new UsageError('--jail-* options need --executor jail');
  const jail = executor === 'jail' ? compileJailOptions(input.jail ?? {}, capacity) : undefined;
  const chrootFlags = Object.values(input.chroot ?? {}).some((v) => v !== undefined);
  if (chrootFlags && executor !== 'chroot') {
    throw new UsageError(
      '--root, --chroot-user, --memory-limit, --pids-limit, --cpu-shares and --id-range need --executor chroot',
    );
  }
  const chroot = executor === 'chroot' ? compileChrootOptions(input.chroot ?? {}) : undefined;
  const reconnectMaxMs = integer(input.reconnectMaxMs ?? DEFAULTS.reconnectMaxMs, '--reconnect-max-ms', 1, 3_600_000);
  let trust;
  try {
    trust = loadTrust(input.ca);
  } catch (err) {
    if (err instanceof TrustFileError) throw new UsageError(err.message);
    throw err;
  }
  const keepaliveSec = Number(input.keepaliveSec ?? DEFAULTS.keepaliveSec);
  if (!Number.isFinite(keepaliveSec) || keepaliveSec <= 0 || keepaliveSec > 3600) {
    throw new UsageError(`--keepalive must be a number of seconds from 0 to 3600, got "${input.keepaliveSec}"`);
  }
  return {
    remote,
    name: workerName,
    platform,
    labels,
    capacity,
    executor,
    workDir: resolve(input.workDir ?? join(tmpdir(), 'builder-worker', workerName)),
    jail,
    chroot,
    jsonLogs: input.jsonLogs,
    connection: {
      url: websocketUrl(remote),
      token,
      maxPayload: LIMITS.maxMessageBytes,
      reconnectMinMs: Math.min(input.reconnectMinMs ?? DEFAULTS.reconnectMinMs, reconnectMaxMs),
      reconnectMaxMs,
      helloTimeoutMs: input.helloTimeoutMs ?? DEFAULTS.helloTimeoutMs,
      keepaliveMs: Math.round(keepaliveSec * 1000),
      trust,
    },
    console: {
      windowBytes: input.windowBytes ?? DEFAULTS.windowBytes,
      flushBytes: Math.min(input.flushBytes ?? DEFAULTS.flushBytes, LIMITS.maxChunkBytes),
      flushMs: input.flushMs ?? DEFAULTS.flushMs,
      maxChunkBytes: LIMITS.maxChunkBytes,
    },
    shutdownAckTimeoutMs: input.shutdownAckTimeoutMs ?? DEFAULTS.shutdownAckTimeoutMs,
    gitTimeoutMs: integer(input.gitTimeoutSec ?? DEFAULTS.gitTimeoutSec, '--git-timeout', 1, 86_400) * 1000,
    gitMirrorMaxAgeMs:
      integer(input.gitMirrorDays ?? DEFAULTS.gitMirrorDays, '--git-mirror-days', 0, 36_500) * 86_400_000,
    artifacts: {
      base: httpBase(remote),
      token,
      trust,
      attempts: 5,
      retryBaseMs: 1000,
      retryMaxMs: 30_000,
      fullWaitMs: 24 * 3600_000,
    },
  };
}

/** http://host:8330 → ws://host:8330/ws (a path prefix, for a reverse proxy, is kept). */
export function websocketUrl(remote: string): string {
  let url: URL;
  try {
    url = new URL(remote);
  } catch {
    throw new UsageError(`--remote "${remote}" is not a URL; expected e.g. http://server:8330`);
  }
  const schemes: Record<string, string> = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' };
  const scheme = schemes[url.protocol];
  if (!scheme) throw new UsageError(`--remote must be an http:// or https:// URL (got "${remote}")`);
  url.protocol = scheme;
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/ws`;
  url.search = '';
  url.hash = '';
  return url.toString();
}

function required(value: string | undefined, message: string): string {
  if (value === undefined || value === '') throw new UsageError(message);
  return value;
}

function name(value: string, flag: string): string {
  if (!NameSchema.safeParse(value).success) {
    throw new UsageError(
      `${flag} "${value}" is not a valid name (letters, digits, ".", "_", "-"; at most ${LIMITS.maxNameLength})`,
    );
  }
  return value;
}

function integer(value: number | string, flag: string, min: number, max: number): number {
  const n = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be an integer from ${min} to ${max} (got "${value}")`);
  }
  return n;
}

function defaultName(): string {
  return (
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .replace(/^[^A-Za-z0-9]+/, '')
      .slice(0, LIMITS.maxNameLength) || 'worker'
  );
}
