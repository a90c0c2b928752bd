import { formatIpv4 } from './jail-options.ts';

/** The configured address range; each running job holds one address until its jail is gone. */
export class AddressPool {
  readonly #first: number;
  readonly #last: number;
  readonly #taken = new Set<number>();

  constructor(first: number, last: number) {
    this.#first = first;
    this.#last = last;
  }

  /** The lowest free address, or undefined when every one is in use. */
  take(): string | undefined {
    for (let n = this.#first; n <= this.#last; n++) {
      if (this.#taken.has(n)) continue;
      this.#taken.add(n);
      return formatIpv4(n);
    }
    return undefined;
  }

  release(address: string): void {
    const [a = 0, b = 0, c = 0, d = 0] = address.split('.').map(Number);
    this.#taken.delete(((a * 256 + b) * 256 + c) * 256 + d);
  }

  contains(n: number): boolean {
    return n >= this.#first && n <= this.#last;
  }
}
