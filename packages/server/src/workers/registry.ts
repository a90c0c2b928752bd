import type { ServerToWorker } from '@builder/protocol';

/** A connected worker as the dispatcher sees it. */
export interface ConnectedWorker {
  readonly name: string;
  readonly platform: string;
  readonly labels: string[];
  readonly capacity: number;
  readonly executor: string;
  readonly connectedAt: number;
  lastSeenAt: number;
  /** Runs assigned to this worker and not yet finished. */
  readonly runs: Set<string>;
  /** Set when it rejected an assignment; cleared when a slot frees or it reconnects. */
  refusing: boolean;
  send(message: ServerToWorker): void;
  close(code: number, reason: string): void;
}

export function freeSlots(w: ConnectedWorker): number {
  return w.refusing ? 0 : Math.max(0, w.capacity - w.runs.size);
}

/** Connected workers by name. One connection per name: a reconnect replaces the old one. */
export class Registry {
  private readonly workers = new Map<string, ConnectedWorker>();
  /**
   * The same workers by platform, in the order they connected: the dispatcher reads it with every
   * batch, which copying and filtering a thousand workers each time turned into most of its garbage.
   */
  private readonly byPlatform = new Map<string, ConnectedWorker[]>();

  add(worker: ConnectedWorker): ConnectedWorker | undefined {
    const previous = this.workers.get(worker.name);
    if (previous) this.unindex(previous);
    this.workers.set(worker.name, worker);
    const list = this.byPlatform.get(worker.platform);
    if (list) list.push(worker);
    else this.byPlatform.set(worker.platform, [worker]);
    return previous;
  }

  /** Remove only if `worker` is still the registered connection for its name. */
  remove(worker: ConnectedWorker): boolean {
    if (this.workers.get(worker.name) !== worker) return false;
    this.workers.delete(worker.name);
    this.unindex(worker);
    return true;
  }

  private unindex(worker: ConnectedWorker): void {
    const list = this.byPlatform.get(worker.platform);
    if (!list) return;
    const i = list.indexOf(worker);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byPlatform.delete(worker.platform);
  }

  get(name: string): ConnectedWorker | undefined {
    return this.workers.get(name);
  }

  all(): ConnectedWorker[] {
    return [...this.workers.values()];
  }

  /** The connected workers of `platform`: the registry's own list, not a copy (read it, keep it not). */
  forPlatform(platform: string): readonly ConnectedWorker[] {
    return this.byPlatform.get(platform) ?? [];
  }

  /** Platforms with a connected worker (a new set: the caller's to change). */
  platforms(): Set<string> {
    return new Set(this.byPlatform.keys());
  }
}
