import { resolve } from 'node:path';
import { createLogger, parseSize } from '@builder/protocol';
import type { AlertOptions } from './alerts/alerts.ts';
import type { ArtifactOptions } from './artifacts/open.ts';
import type { RetentionOptions, RetentionPolicy } from './artifacts/retention.ts';
import { type Clock, systemClock } from './clock.ts';
import type { Logger } from './log.ts';

export interface ServerOptions {
  dataDir: string;
  host: string;
  /** 0: any free port. */
  port: number;
  /** A run whose worker is not heard from for this long is lost. */
  leaseMs: number;
  heartbeatMs: number;
  /** A schedule slot handled later than this counts as missed. */
  missedGraceMs: number;
  clock: Clock;
  logger: Logger;
  /** Where artifact bytes go and how much one run may store. */
  artifacts?: ArtifactOptions;
  /** Strip old runs' artifacts and collect unreferenced blobs at start and every hour; none: never. */
  retention?: RetentionOptions;
  /** After the data dir filled up, writes resume once this much is free (default 64 MiB). */
  resumeFreeBytes?: number;
  /** Alert targets (webhooks, Alertmanager, after-hooks); none: no alerts. */
  alerts?: AlertOptions;
}

/** What the command line (or a test) may set: text as typed, anything left out takes its default. */
export interface ServerOptionsInput {
  dataDir?: string | undefined;
  /** HOST:PORT */
  listen?: string | undefined;
  lease?: string | undefined;
  /** Default: a quarter of the lease, at least 100 ms. */
  heartbeat?: string | undefined;
  missedGrace?: string | undefined;
  /** undefined: JSON unless stderr is a terminal. */
  jsonLogs?: boolean | undefined;
  debug?: boolean | undefined;
  alertWebhook?: readonly string[] | undefined;
  alertmanager?: readonly string[] | undefined;
  alertAfter?: readonly string[] | undefined;
  publicUrl?: string | undefined;
  alertTimeout?: string | undefined;
  alertRetryBase?: string | undefined;
  alertAttempts?: string | number | undefined;
  alertRetryMax?: string | undefined;
  alertOutboxMax?: string | number | undefined;
  alertmanagerResend?: string | undefined;
  artifacts?: string | undefined;
  s3Endpoint?: string | undefined;
  s3Region?: string | undefined;
  artifactLimit?: string | undefined;
  retainLatest?: string | undefined;
  retainFor?: string | undefined;
  resumeFree?: string | undefined;
  clock?: Clock | undefined;
  /** Default: one made from jsonLogs and debug, writing to stderr. */
  logger?: Logger | undefined;
}

/** Every option resolved and checked, every default filled in; the server takes only this. */
export type CompiledServerOptions = ServerOptions &
  Required<Pick<ServerOptions, 'artifacts' | 'resumeFreeBytes' | 'alerts'>>;

/** The defaults, as a user would type them (so `--help` shows the same text). */
export const DEFAULTS = {
  dataDir: './builder-data',
  listen: '127.0.0.1:8330',
  lease: '60s',
  missedGrace: '60s',
  alertTimeout: '10s',
  alertRetryBase: '1s',
  alertAttempts: '0',
  alertRetryMax: '5m',
  alertOutboxMax: '1000',
  alertmanagerResend: '60s',
  s3Region: 'us-east-1',
  artifactLimit: '8G',
  resumeFree: '64M',
} as const;

/** A bad option value: the message names the flag; the command exits 2, like for an unknown flag. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function compileServerOptions(input: ServerOptionsInput): CompiledServerOptions {
  const attempts = wholeNumber(input.alertAttempts ?? DEFAULTS.alertAttempts, '--alert-attempts');
  if (attempts < 0) throw new UsageError(`--alert-attempts must be 0 (until delivered) or a positive integer`);
  const outboxMax = wholeNumber(input.alertOutboxMax ?? DEFAULTS.alertOutboxMax, '--alert-outbox-max');
  if (outboxMax < 1) throw new UsageError(`--alert-outbox-max must be a positive integer`);
  const resendMs = parseDuration(input.alertmanagerResend ?? DEFAULTS.alertmanagerResend, '--alertmanager-resend');
  if (resendMs <= 0) throw new UsageError(`--alertmanager-resend must be longer than 0`);
  const publicUrl = input.publicUrl;
  if (publicUrl !== undefined && !/^https?:\/\//.test(publicUrl)) {
    throw new UsageError(`--public-url must be an http(s) URL, got "${publicUrl}"`);
  }
  const webhooks = [...(input.alertWebhook ?? [])];
  const alertmanagers = [...(input.alertmanager ?? [])];
  for (const u of [...webhooks, ...alertmanagers]) {
    if (!/^https?:\/\//.test(u)) throw new UsageError(`alert URLs must be http(s), got "${u}"`);
  }
  const { host, port } = parseListen(input.listen ?? DEFAULTS.listen);
  const leaseMs = parseDuration(input.lease ?? DEFAULTS.lease, '--lease');
  const heartbeatMs =
    input.heartbeat !== undefined
      ? parseDuration(input.heartbeat, '--heartbeat')
      : Math.max(100, Math.floor(leaseMs / 4));
  const retention =
    input.retainLatest === undefined && input.retainFor === undefined
      ? undefined
      : {
          keepLatest: input.retainLatest === undefined ? undefined : parseKeep(input.retainLatest, '--retain-latest'),
          olderThanMs: input.retainFor === undefined ? undefined : parseDuration(input.retainFor, '--retain-for'),
        };
  return {
    dataDir: input.dataDir ?? DEFAULTS.dataDir,
    host,
    port,
    leaseMs,
    heartbeatMs,
    missedGraceMs: parseDuration(input.missedGrace ?? DEFAULTS.missedGrace, '--missed-grace'),
    clock: input.clock ?? systemClock,
    logger:
      input.logger ??
      createLogger({
        json: input.jsonLogs ?? !process.stderr.isTTY,
        level: input.debug === true ? 'debug' : 'info',
      }),
    artifacts: {
      store: input.artifacts,
      s3Endpoint: input.s3Endpoint,
      s3Region: input.s3Region ?? DEFAULTS.s3Region,
      maxRunBytes: parseSizeFlag(input.artifactLimit ?? DEFAULTS.artifactLimit, '--artifact-limit'),
    },
    resumeFreeBytes: parseSizeFlag(input.resumeFree ?? DEFAULTS.resumeFree, '--resume-free'),
    retention,
    alerts: {
      webhooks,
      alertmanagers,
      after: (input.alertAfter ?? []).map((p) => resolve(p)),
      publicUrl: publicUrl?.replace(/\/+$/, ''),
      delivery: {
        timeoutMs: parseDuration(input.alertTimeout ?? DEFAULTS.alertTimeout, '--alert-timeout'),
        retryBaseMs: parseDuration(input.alertRetryBase ?? DEFAULTS.alertRetryBase, '--alert-retry-base'),
        maxAttempts: attempts,
        retryMaxMs: parseDuration(input.alertRetryMax ?? DEFAULTS.alertRetryMax, '--alert-retry-max'),
        maxQueued: outboxMax,
        resendMs,
      },
    },
  };
}

/** The `vacuum` command's flags → its policy; at least one of the two rules is needed. */
export function compileVacuumPolicy(input: {
  keepLatest?: string | undefined;
  olderThan?: string | undefined;
  job?: string | undefined;
  dryRun?: boolean | undefined;
}): RetentionPolicy & { dryRun: boolean } {
  if (input.keepLatest === undefined && input.olderThan === undefined) {
    throw new UsageError('give --keep-latest N, --older-than DURATION or both');
  }
  return {
    keepLatest: input.keepLatest === undefined ? undefined : parseKeep(input.keepLatest, '--keep-latest'),
    olderThanMs: input.olderThan === undefined ? undefined : parseDuration(input.olderThan, '--older-than'),
    job: input.job,
    dryRun: input.dryRun === true,
  };
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(listen);
  if (!m || !m[1] || Number(m[2]) > 65535) throw new UsageError(`--listen must be HOST:PORT, got "${listen}"`);
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}

/** "90", "90s", "2m", "1h", "500ms" → milliseconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${what} must be a duration like 60, 60s, 5m or 500ms, got "${text}"`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    (m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'
  ];
  return Number(m[1]) * unit;
}

/** "512", "10K", "1.5G", "200MiB" (powers of 1024) → bytes. */
export function parseSizeFlag(text: string, what: string): number {
  const n = parseSize(text);
  if (n === null) throw new UsageError(`${what} must be a size like 500M or 8G, got "${text}"`);
  return n;
}

/** A count of runs to keep; 0 is allowed (keep only the latest successful run). */
export function parseKeep(text: string, what: string): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${what} must be a whole number of runs, got "${text}"`);
  return Number(text);
}

function wholeNumber(value: string | number, flag: string): number {
  const n = typeof value === 'number' ? value : /^\s*-?\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n)) throw new UsageError(`${flag} must be a positive integer`);
  return n;
}
