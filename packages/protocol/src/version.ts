/** Protocol versions this build speaks; the hello picks the highest both sides know. */
export const PROTOCOL_VERSIONS = [1] as const;
export const PROTOCOL_VERSION = 1;

export function negotiateVersion(offered: readonly number[]): number | undefined {
  let best: number | undefined;
  for (const v of offered) {
    if ((PROTOCOL_VERSIONS as readonly number[]).includes(v) && (best === undefined || v > best)) best = v;
  }
  return best;
}
