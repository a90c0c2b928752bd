import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collect = () => void;

/**
 * Bytes between two collections on a console's path. 8 MiB measured best of 2–16 for a 200 MiB
 * console on the server: no full GC in it; less often lets full GCs through again, more often
 * promotes frames still in flight to the old generation (both: more CPU, a higher peak RSS).
 */
const CHURN_BYTES = 8 * 1024 * 1024;

/**
 * Collects V8's young generation after every `everyBytes` of short-lived buffers reported to it.
 *
 * A console streaming through allocates buffers per frame that die at once: on the server the
 * socket's reads (64 KiB each) and the frame ws joins them into, on the worker the job's output as
 * read and the masked copy ws sends. But V8 (Node 20) counts every ArrayBuffer allocated since the
 * last full GC against the old generation's limit until a collection frees it, and with little
 * JavaScript allocated beside them no scavenge comes first: the server ran a full mark-compact
 * every 16–24 MiB of console (12 per 200 MiB, 30–45 % of its CPU samples on a 15 MiB heap), the
 * worker every ~16 MiB, and the buffers stayed resident until then. A young-generation collection
 * frees them just as well, in ~1 ms.
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

/**
 * The process's own: a young generation is one per process, so every bulk path (console frames,
 * upload bodies) counts towards the same collections.
 */
export const bulkBuffers = new BufferChurn(CHURN_BYTES);

type Gc = (options: { type: 'minor' }) => void;
let youngGc: Gc | undefined;

/**
 * A young-generation collection. The `gc` function exists only with --expose-gc: a process started
 * with it has it already; otherwise the flag is set just long enough to take `gc` from a new
 * context, so no other context gets a global `gc`.
 */
export function collectYoung(): void {
  youngGc ??= (globalThis as { gc?: Gc }).gc ?? takeGc();
  youngGc({ type: 'minor' });
}

function takeGc(): Gc {
  setFlagsFromString('--expose-gc');
  try {
    const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
    // a runtime that no longer lets the flag be set this late: V8 collects on its own schedule
    return typeof gc === 'function' ? (gc as Gc) : () => undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
