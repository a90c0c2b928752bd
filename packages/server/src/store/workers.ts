import type { Db } from './db.ts';

/** A worker as last recorded: connected or not, what it said in its last hello. */
export interface KnownWorker {
  name: string;
  platform: string;
  labels: string[];
  capacity: number;
  executor: string;
  connectedAt: number | null;
  lastSeenAt: number | null;
}

/** Every worker that ever connected (the registry holds only the connected ones, in memory). */
export class WorkerStore {
  private readonly upsert;
  private readonly seen;
  private readonly all;

  constructor(db: Db) {
    this.upsert = db.prepare(
      `INSERT INTO workers (name, platform, labels, capacity, executor, connected_at, last_seen_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET platform = excluded.platform, labels = excluded.labels,
       capacity = excluded.capacity, executor = excluded.executor, connected_at = excluded.connected_at,
       last_seen_at = excluded.last_seen_at`,
    );
    this.seen = db.prepare('UPDATE workers SET last_seen_at = ? WHERE name = ?');
    this.all = db.prepare<
      [],
      {
        name: string;
        platform: string;
        labels: string;
        capacity: number;
        executor: string;
        connected_at: number | null;
        last_seen_at: number | null;
      }
    >('SELECT * FROM workers ORDER BY name');
  }

  /** A worker said hello. */
  connected(w: Omit<KnownWorker, 'connectedAt' | 'lastSeenAt'>, now: number): void {
    this.upsert.run(w.name, w.platform, JSON.stringify(w.labels), w.capacity, w.executor, now, now);
  }

  /** Its connection closed. */
  disconnected(name: string, now: number): void {
    this.seen.run(now, name);
  }

  list(): KnownWorker[] {
    return this.all.all().map((w) => ({
      name: w.name,
      platform: w.platform,
      labels: JSON.parse(w.labels) as string[],
      capacity: w.capacity,
      executor: w.executor,
      connectedAt: w.connected_at,
      lastSeenAt: w.last_seen_at,
    }));
  }
}
