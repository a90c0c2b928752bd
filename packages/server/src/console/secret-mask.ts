/** What a secret's value is replaced with wherever output is stored or shown. */
export const MASK = Buffer.from('***');

/**
 * Masks secret values in a run's console as its chunks arrive, also when a value is split across
 * chunks: the tail of a chunk that could be the start of a secret is held back (the carry) until
 * the next chunk says whether it is one. The carry is part of the durable state (runs.log_carry,
 * recorded with the log length it belongs to), so an acknowledged chunk is never lost to a crash
 * while its tail waits here.
 */
export class SecretMask {
  private readonly secrets: Buffer[];
  private readonly longest: number;
  carry: Buffer;

  /** `values`: the secret values, any order; empty ones are ignored. */
  constructor(values: readonly string[], carry: Buffer | null = null) {
    this.secrets = values
      .filter((v) => v.length > 0)
      .map((v) => Buffer.from(v))
      .sort((a, b) => b.length - a.length);
    this.longest = this.secrets[0]?.length ?? 0;
    this.carry = carry ?? Buffer.alloc(0);
  }

  /**
   * The bytes of `chunk` (after what was carried) that are safe to store; keeps a new carry.
   * `final`: no more output follows, so nothing is held back.
   */
  push(chunk: Buffer, final = false): Buffer {
    const data = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const out: Buffer[] = [];
    let pos = 0;
    let keepFrom = -1;
    for (;;) {
      const hit = this.nextHit(data, pos);
      if (!hit) break;
      // `abc` found at the very end while `abcdef` is a secret too: the next bytes decide
      if (!final && this.couldGrow(data, hit)) {
        keepFrom = hit.at;
        break;
      }
      out.push(data.subarray(pos, hit.at), MASK);
      pos = hit.at + hit.length;
    }
    if (keepFrom < 0) {
      const tail = data.subarray(pos);
      keepFrom = data.length - (final ? 0 : this.heldBack(tail));
    }
    out.push(data.subarray(pos, keepFrom));
    // copied: `chunk` may be a view of a frame buffer that is reused
    this.carry = Buffer.from(data.subarray(keepFrom));
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** What is held back, masked as the end of the output (it ended, or the server writes a line). */
  flush(): Buffer {
    return this.carry.length === 0 ? this.carry : this.push(Buffer.alloc(0), true);
  }

  /** Could a longer secret still match where `hit` is, once more bytes come? */
  private couldGrow(data: Buffer, hit: { at: number; length: number }): boolean {
    const rest = data.subarray(hit.at);
    return this.secrets.some((s) => s.length > rest.length && s.subarray(0, rest.length).equals(rest));
  }

  /** The earliest occurrence of any secret at or after `from`; the longest one wins a tie. */
  private nextHit(data: Buffer, from: number): { at: number; length: number } | undefined {
    let best: { at: number; length: number } | undefined;
    for (const s of this.secrets) {
      const at = data.indexOf(s, from);
      if (at >= 0 && (!best || at < best.at)) best = { at, length: s.length };
    }
    return best;
  }

  /** How many bytes at the end of `tail` are the beginning of some secret (never a whole one). */
  private heldBack(tail: Buffer): number {
    for (let k = Math.min(tail.length, this.longest - 1); k > 0; k--) {
      const end = tail.subarray(tail.length - k);
      if (this.secrets.some((s) => s.length > k && s.subarray(0, k).equals(end))) return k;
    }
    return 0;
  }
}
