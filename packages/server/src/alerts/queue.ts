export interface DeliveryOptions {
  /** Per attempt: an HTTP request or after-hook taking longer fails. */
  timeoutMs: number;
  /** Attempts per event and target, the first included; 0: until delivered (or dropped by `maxQueued`). */
  maxAttempts: number;
  /** Wait before retry n (n ≥ 1): base · 2^(n-1), at most `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Events waiting in the outbox per target beyond this are dropped (oldest first), with a log line and a metric. */
  maxQueued: number;
  /** Alertmanager: firing alerts are posted again this often (its default resolve_timeout is 5 min). */
  resendMs: number;
}

export const DEFAULT_DELIVERY: DeliveryOptions = {
  timeoutMs: 10_000,
  maxAttempts: 0,
  retryBaseMs: 1000,
  retryMaxMs: 300_000,
  maxQueued: 1000,
  resendMs: 60_000,
};
