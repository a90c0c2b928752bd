import type { Db } from './db.ts';

/** One undelivered alert for one target. */
export interface OutboxRow {
  id: number;
  target: string;
  /** JSON AlertEvent. */
  body: string;
  attempts: number;
  notBefore: number;
}

/** One job and platform whose last finished run failed. */
export interface FiringRow {
  job: string;
  platform: string;
  startsAt: number;
  /** JSON AlertEvent of the latest failure. */
  body: string;
}

/**
 * The alert outbox (alerts waiting for delivery, per target, in id order) and the set of failing
 * job+platform pairs. Written inside the batch of the change that raised the alert.
 */
export class AlertOutboxStore {
  private readonly addStmt;
  private readonly countStmt;
  private readonly oldestStmt;
  private readonly headStmt;
  private readonly deleteStmt;
  private readonly failedStmt;
  private readonly targetsStmt;
  private readonly discardStmt;
  private readonly lengthsStmt;
  private readonly fireStmt;
  private readonly resolveStmt;
  private readonly firingStmt;

  constructor(db: Db) {
    this.addStmt = db.prepare<[string, string, number]>(
      'INSERT INTO alert_outbox (target, body, created_at) VALUES (?, ?, ?)',
    );
    this.countStmt = db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM alert_outbox WHERE target = ?');
    this.oldestStmt = db.prepare<[string, number], { id: number; body: string }>(
      'SELECT id, body FROM alert_outbox WHERE target = ? ORDER BY id LIMIT ?',
    );
    this.headStmt = db.prepare<[string], OutboxRow>(
      `SELECT id, target, body, attempts, not_before AS notBefore FROM alert_outbox WHERE target = ?
       ORDER BY id LIMIT 1`,
    );
    this.deleteStmt = db.prepare<[number]>('DELETE FROM alert_outbox WHERE id = ?');
    this.failedStmt = db.prepare<[number, number, number]>(
      'UPDATE alert_outbox SET attempts = ?, not_before = ? WHERE id = ?',
    );
    this.discardStmt = db.prepare<[string]>('DELETE FROM alert_outbox WHERE target = ?');
    this.targetsStmt = db.prepare<[], { target: string }>('SELECT DISTINCT target FROM alert_outbox');
    this.lengthsStmt = db.prepare<[], { target: string; n: number }>(
      'SELECT target, COUNT(*) AS n FROM alert_outbox GROUP BY target',
    );
    this.fireStmt = db.prepare<[number, string, number, string]>(
      `INSERT INTO alerts_firing (job_id, platform, starts_at, body) VALUES (?, ?, ?, ?)
       ON CONFLICT (job_id, platform) DO UPDATE SET body = excluded.body`,
    );
    this.resolveStmt = db.prepare<[number, string], { startsAt: number }>(
      'DELETE FROM alerts_firing WHERE job_id = ? AND platform = ? RETURNING starts_at AS startsAt',
    );
    this.firingStmt = db.prepare<[], FiringRow>(
      `SELECT jobs.name AS job, f.platform, f.starts_at AS startsAt, f.body FROM alerts_firing f
       JOIN jobs ON jobs.id = f.job_id WHERE jobs.deleted_at IS NULL ORDER BY f.starts_at, jobs.name, f.platform`,
    );
  }

  /**
   * Queue `body` for `target`; beyond `max` rows for that target the oldest go, and are returned
   * (so the caller can say so).
   */
  add(target: string, body: string, now: number, max: number): { id: number; body: string }[] {
    this.addStmt.run(target, body, now);
    const over = this.countStmt.get(target)!.n - max;
    if (over <= 0) return [];
    const dropped = this.oldestStmt.all(target, over);
    for (const d of dropped) this.deleteStmt.run(d.id);
    return dropped;
  }

  /** The oldest row of `target`: the next to deliver. */
  head(target: string): OutboxRow | undefined {
    return this.headStmt.get(target);
  }

  delivered(id: number): void {
    this.deleteStmt.run(id);
  }

  /** A delivery failed: count it and hold the row back until `notBefore`. */
  failed(id: number, attempts: number, notBefore: number): void {
    this.failedStmt.run(attempts, notBefore, id);
  }

  /** Drop every row of `target`; how many there were. */
  discard(target: string): number {
    return this.discardStmt.run(target).changes;
  }

  /** Targets with rows waiting. */
  targets(): string[] {
    return this.targetsStmt.all().map((r) => r.target);
  }

  /** Rows waiting, per target. */
  lengths(): { target: string; n: number }[] {
    return this.lengthsStmt.all();
  }

  /** A run of the job on `platform` failed: firing from now, or still (the first failure's start kept). */
  fire(jobId: number, platform: string, startsAt: number, body: string): void {
    this.fireStmt.run(jobId, platform, startsAt, body);
  }

  /** A run succeeded: no longer firing. The streak's start when it was. */
  resolve(jobId: number, platform: string): number | undefined {
    return this.resolveStmt.get(jobId, platform)?.startsAt;
  }

  /** What is firing now (of jobs still scheduled), oldest first. */
  firing(): FiringRow[] {
    return this.firingStmt.all();
  }
}
