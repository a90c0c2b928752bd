import type { JobSpec } from '@builder/protocol';
import { readRows, type Db } from './db.ts';
import { jobFromRaw, type JobRow, type RawJob } from './rows.ts';

/** Job definitions. Unscheduling keeps the row (soft delete) so runs and numbering survive. */
export class JobStore {
  private readonly byName;
  private readonly byId;
  private readonly all;
  private readonly due;
  private readonly earliest;
  private readonly bumpNumber;
  private readonly setNext;
  private readonly webhooksOf;
  private readonly followersOf;

  constructor(private readonly db: Db) {
    this.byName = readRows(db.prepare<[string], RawJob>('SELECT * FROM jobs WHERE name = ?'));
    this.byId = readRows(db.prepare<[number], RawJob>('SELECT * FROM jobs WHERE id = ?'));
    this.all = db.prepare<[], RawJob>('SELECT * FROM jobs WHERE deleted_at IS NULL ORDER BY name');
    this.due = db.prepare<[number], RawJob>(
      'SELECT * FROM jobs WHERE deleted_at IS NULL AND next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY next_run_at',
    );
    this.earliest = db.prepare<[], { t: number | null }>(
      'SELECT MIN(next_run_at) AS t FROM jobs WHERE deleted_at IS NULL AND next_run_at IS NOT NULL',
    );
    this.bumpNumber = db.prepare<[number], { number: number }>(
      'UPDATE jobs SET next_number = next_number + 1 WHERE id = ? RETURNING next_number - 1 AS number',
    );
    this.setNext = db.prepare<[number | null, number, number]>(
      'UPDATE jobs SET next_run_at = ?, updated_at = ? WHERE id = ?',
    );
    // read with every run that ends (alerts, chains)
    this.followersOf = readRows(
      db.prepare<[string], RawJob>('SELECT * FROM jobs WHERE after = ? AND deleted_at IS NULL ORDER BY name'),
    );
    this.webhooksOf = db.prepare<[number], { hooks: string }>('SELECT alert_webhooks AS hooks FROM jobs WHERE id = ?');
  }

  /** A live (not unscheduled) job by name. */
  get(name: string): JobRow | undefined {
    const row = this.byName.get(name);
    return row && row.deleted_at === null ? jobFromRaw(row) : undefined;
  }

  /** Any job by name, unscheduled ones included (their runs still exist). */
  getAny(name: string): JobRow | undefined {
    const row = this.byName.get(name);
    return row ? jobFromRaw(row) : undefined;
  }

  getById(id: number): JobRow | undefined {
    const row = this.byId.get(id);
    return row ? jobFromRaw(row) : undefined;
  }

  list(): JobRow[] {
    return this.all.all().map(jobFromRaw);
  }

  /** Create or replace a job's definition; an unscheduled job of that name comes back with its history. */
  upsert(spec: JobSpec, nextRunAt: number | null, now: number): { job: JobRow; created: boolean } {
    const existing = this.byName.get(spec.name);
    const values = [
      JSON.stringify(spec.platforms),
      spec.script ?? '',
      spec.scripts === undefined ? null : JSON.stringify(spec.scripts),
      spec.template === null ? null : JSON.stringify(spec.template),
      spec.schedule,
      spec.timezone,
      spec.missed,
      spec.timeoutSec,
      spec.killGraceSec,
      spec.retries,
      spec.retryBackoffSec,
      spec.concurrency,
      JSON.stringify(spec.params),
      nextRunAt,
      JSON.stringify(spec.alertWebhooks),
      JSON.stringify(spec.secrets),
      spec.definition === null ? null : JSON.stringify(spec.definition),
      spec.source === undefined ? null : JSON.stringify(spec.source),
      spec.after,
      spec.prepare ?? null,
      spec.prepares === undefined ? null : JSON.stringify(spec.prepares),
    ];
    if (existing) {
      this.db
        .prepare(
          `UPDATE jobs SET platforms = ?, script = ?, scripts = ?, template = ?, schedule = ?, timezone = ?, missed = ?, timeout_s = ?,
           kill_grace_s = ?, retries = ?, retry_backoff_s = ?, concurrency = ?, params = ?, next_run_at = ?,
           alert_webhooks = ?, secrets = ?, definition = ?, source = ?, after = ?, prepare = ?, prepares = ?, deleted_at = NULL, updated_at = ? WHERE id = ?`,
        )
        .run(...values, now, existing.id);
      return { job: this.getById(existing.id)!, created: existing.deleted_at !== null };
    }
    const info = this.db
      .prepare(
        `INSERT INTO jobs (platforms, script, scripts, template, schedule, timezone, missed, timeout_s, kill_grace_s,
         retries, retry_backoff_s, concurrency, params, next_run_at, alert_webhooks, secrets, definition, source, after, prepare,
         prepares, name, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(...values, spec.name, now, now);
    return { job: this.getById(Number(info.lastInsertRowid))!, created: true };
  }

  unschedule(id: number, now: number): void {
    this.db
      .prepare('UPDATE jobs SET deleted_at = ?, next_run_at = NULL, updated_at = ? WHERE id = ?')
      .run(now, now, id);
  }

  setSchedule(id: number, schedule: string | null, timezone: string, nextRunAt: number | null, now: number): void {
    this.db
      .prepare('UPDATE jobs SET schedule = ?, timezone = ?, next_run_at = ?, updated_at = ? WHERE id = ?')
      .run(schedule, timezone, nextRunAt, now, id);
  }

  setNextRunAt(id: number, nextRunAt: number | null, now: number): void {
    this.setNext.run(nextRunAt, now, id);
  }

  /** The next run number of a job; numbers are never reused. */
  allocateNumber(id: number): number {
    return this.bumpNumber.get(id)!.number;
  }

  dueAt(now: number): JobRow[] {
    return this.due.all(now).map(jobFromRaw);
  }

  earliestNextRun(): number | null {
    return this.earliest.get()?.t ?? null;
  }

  /** The job's own alert webhooks (cheaper than the whole row, on the path of every finished run). */
  alertWebhooks(id: number): string[] {
    const row = this.webhooksOf.get(id);
    return JSON.parse(row?.hooks ?? '[]') as string[];
  }

  /** The live jobs that run after each success of `name` (`after:`). */
  followers(name: string): JobRow[] {
    return this.followersOf.all(name).map(jobFromRaw);
  }

  /** Platforms of the jobs not deleted. */
  platformsInUse(): Set<string> {
    const set = new Set<string>();
    for (const j of this.db
      .prepare<[], { platforms: string }>('SELECT platforms FROM jobs WHERE deleted_at IS NULL')
      .all()) {
      for (const p of JSON.parse(j.platforms) as string[]) set.add(p);
    }
    return set;
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM jobs WHERE deleted_at IS NULL').get() as { n: number }).n;
  }
}
