import { parseSize } from '@builder/protocol';
import type { AlertOptions } from './alerts/alerts.ts';
import type { ArtifactOptions } from './artifacts/open.ts';
import type { RetentionOptions } from './artifacts/retention.ts';
import type { Clock } from './clock.ts';
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

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(listen);
  if (!m || !m[1] || Number(m[2]) > 65535) throw new Error(`--listen must be HOST:PORT, got "${listen}"`);
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}

/** "90", "90s", "2m", "1h", "500ms" → milliseconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new Error(`${what} must be a duration like 60, 60s, 5m or 500ms, got "${text}"`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    (m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'
  ];
  return Number(m[1]) * unit;
}

/** "512", "10K", "1.5G", "200MiB" (powers of 1024) → bytes. */
export function parseSizeFlag(text: string, what: string): number {
  const n = parseSize(text);
  if (n === null) throw new Error(`${what} must be a size like 500M or 8G, got "${text}"`);
  return n;
}
