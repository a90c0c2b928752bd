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

  add(worker: ConnectedWorker): ConnectedWorker | undefined {
    const previous = this.workers.get(worker.name);
    this.workers.set(worker.name, worker);
    return previous;
  }

  /** Remove only if `worker` is still the registered connection for its name. */
  remove(worker: ConnectedWorker): boolean {
    if (this.workers.get(worker.name) !== worker) return false;
    this.workers.delete(worker.name);
    return true;
  }

  get(name: string): ConnectedWorker | undefined {
    return this.workers.get(name);
  }

  all(): ConnectedWorker[] {
    return [...this.workers.values()];
  }

  forPlatform(platform: string): ConnectedWorker[] {
    return this.all().filter((w) => w.platform === platform);
  }

  platforms(): Set<string> {
    return new Set(this.all().map((w) => w.platform));
  }
}
