import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collect = () => void;

/**
 * Collects V8's young generation after every `everyBytes` of short-lived buffers reported to it.
 *
 * A console streaming in allocates, per frame, the socket's reads (64 KiB each) and the frame ws
 * joins them into. They die at once, but V8 (Node 20) counts every ArrayBuffer allocated since the
 * last full GC against the old generation's limit until a collection frees it, and with little
 * JavaScript allocated beside them no scavenge comes first: the server ran a full mark-compact
 * every 16–24 MiB of console (12 per 200 MiB, ~35 % of its CPU on a 15 MiB heap), and the buffers
 * stayed resident until then. A young-generation collection frees them just as well, in ~1 ms.
 */
export class BufferChurn {
  #bytes = 0;

  constructor(
    private readonly everyBytes: number,
    private readonly collect: Collect = collectYoung,
  ) {}

  /** `bytes` more were allocated and are already garbage, or soon will be. */
  add(bytes: number): void {
    this.#bytes += bytes;
    if (this.#bytes < this.everyBytes) return;
    this.#bytes = 0;
    this.collect();
  }
}

let youngGc: ((options: { type: 'minor' }) => void) | undefined;

/**
 * A young-generation collection. The `gc` function exists only with --expose-gc: the flag is set
 * just long enough to take it from a new context, so no other context gets a global `gc`.
 */
export function collectYoung(): void {
  if (!youngGc) {
    setFlagsFromString('--expose-gc');
    try {
      youngGc = runInNewContext('gc') as typeof youngGc;
    } finally {
      setFlagsFromString('--no-expose-gc');
    }
  }
  youngGc?.({ type: 'minor' });
}
