import { ErrorCode, ProtocolError } from '@builder/protocol';

/** errno codes that mean "no space" (quota counts: the outcome is the same). */
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT']);

/**
 * Whether `err` says the data dir has no room: ENOSPC/EDQUOT from node:fs, SQLITE_FULL from
 * better-sqlite3. These end in an outage of writes; any other I/O error stays fatal.
 */
export function isStorageFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (NO_SPACE.has(code) || code === 'SQLITE_FULL');
}

/** What a client or worker is told while the server refuses writes. */
export function storageFullError(what: string): ProtocolError {
  return new ProtocolError(
    ErrorCode.StorageFull,
    `the server's disk is full, so it cannot ${what} now; nothing was changed: try again once an operator freed space`,
  );
}
