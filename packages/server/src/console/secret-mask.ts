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

  /** The bytes of `chunk` (after what was carried) that are safe to store; keeps a new carry. */
  push(chunk: Buffer): Buffer {
    const data = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const out: Buffer[] = [];
    let pos = 0;
    for (;;) {
      const hit = this.nextHit(data, pos);
      if (!hit) break;
      out.push(data.subarray(pos, hit.at), MASK);
      pos = hit.at + hit.length;
    }
    const tail = data.subarray(pos);
    const keep = this.heldBack(tail);
    out.push(tail.subarray(0, tail.length - keep));
    // copied: `chunk` may be a view of a frame buffer that is reused
    this.carry = Buffer.from(tail.subarray(tail.length - keep));
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** The carry, to be written as it is (the output ended, or the server writes a line of its own). */
  flush(): Buffer {
    const rest = this.carry;
    this.carry = Buffer.alloc(0);
    return rest;
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
