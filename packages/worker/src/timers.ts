/** setTimeout fires at once beyond this; job timeouts of weeks are legal. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** A timeout of any length; returns its cancel function. */
export function setLongTimeout(fn: () => void, ms: number): () => void {
  let timer: NodeJS.Timeout;
  const arm = (left: number): void => {
    timer = setTimeout(() => (left > MAX_DELAY_MS ? arm(left - MAX_DELAY_MS) : fn()), Math.min(left, MAX_DELAY_MS));
  };
  arm(ms);
  return () => clearTimeout(timer);
}

/** Wall-clock milliseconds with sub-millisecond precision, as the protocol's TimeSchema wants. */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}
