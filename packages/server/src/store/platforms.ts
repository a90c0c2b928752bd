import type { Db } from './db.ts';

/** Platforms an operator dropped: nothing is dispatched to or scheduled for them until undropped. */
export class PlatformStore {
  private readonly dropped = new Set<string>();

  constructor(private readonly db: Db) {
    for (const r of db.prepare('SELECT platform FROM dropped_platforms').all() as { platform: string }[]) {
      this.dropped.add(r.platform);
    }
  }

  isDropped(platform: string): boolean {
    return this.dropped.has(platform);
  }

  droppedPlatforms(): string[] {
    return [...this.dropped].sort();
  }

  drop(platform: string, now: number): boolean {
    if (this.dropped.has(platform)) return false;
    this.db.prepare('INSERT OR IGNORE INTO dropped_platforms (platform, dropped_at) VALUES (?, ?)').run(platform, now);
    this.dropped.add(platform);
    return true;
  }

  undrop(platform: string): boolean {
    if (!this.dropped.has(platform)) return false;
    this.db.prepare('DELETE FROM dropped_platforms WHERE platform = ?').run(platform);
    this.dropped.delete(platform);
    return true;
  }
}
