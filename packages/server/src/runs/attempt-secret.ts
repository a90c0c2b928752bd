import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The secret an attempt's artifact transfer must present. Derived (HMAC of run, attempt and the
 * worker holding it under a key only the server knows) rather than stored: fresh for every
 * attempt, the same after a server restart, and useless to anyone but the worker it was sent to.
 */
export function attemptSecret(key: Buffer, runId: string, attempt: number, worker: string): string {
  return createHmac('sha256', key).update(`${runId}\n${attempt}\n${worker}`).digest('hex');
}

export function attemptSecretMatches(
  key: Buffer,
  run: { id: string; attempt: number; worker: string | null },
  presented: string | undefined,
): boolean {
  if (presented === undefined || run.worker === null || !/^[0-9a-f]{64}$/.test(presented)) return false;
  const expected = Buffer.from(attemptSecret(key, run.id, run.attempt, run.worker), 'hex');
  return timingSafeEqual(expected, Buffer.from(presented, 'hex'));
}
