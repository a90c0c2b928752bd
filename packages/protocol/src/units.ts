/** Durations and sizes as every program reads and writes them. */

/** `340ms`, `1.2s`, `3m04s`, `2h05m`, `1d03h`: truncated, never rounded up (a run "so far" is not yet 3m05s). */
export function formatDuration(ms: number): string {
  if (!(ms > 0)) ms = 0;
  if (ms < 1000) return `${Math.floor(ms)}ms`;
  if (ms < 60_000) return ms % 1000 === 0 ? `${ms / 1000}s` : `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${pad2(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad2(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${pad2(Math.floor(s / 3600) % 24)}h`;
}

const SIZE_UNITS = { '': 0, b: 0, k: 1, m: 2, g: 3, t: 4 } as const;

/**
 * `512`, `10K`, `1.5G`, `512MiB`, `64m`, `200 MB` (powers of 1024, case ignored) → whole bytes,
 * rounded down; null for anything else (negative, no digits, unknown unit, too large to be exact).
 */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])i?b?|(b))?\s*$/i.exec(text);
  if (!m) return null;
  const unit = (m[2] ?? m[3] ?? '').toLowerCase() as keyof typeof SIZE_UNITS;
  const n = Math.floor(Number(m[1]) * 1024 ** SIZE_UNITS[unit]);
  return Number.isSafeInteger(n) ? n : null;
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}
