import type { Db } from './db.ts';

export interface HookRow {
  jobId: number;
  /** What forges sign deliveries with; leaves the server only once, when it made it. */
  secret: string;
  /** Branches a push to which queues runs; null: the job's source ref. */
  branches: string[] | null;
  updatedAt: number;
}

export interface HookEntry {
  job: string;
  branches: string[] | null;
  updatedAt: number;
}

export interface Delivery {
  jobId: number;
  forge: string;
  delivery: string;
  commit: string;
  runs: string[];
}

/** Push hooks per job (`POST /hooks/JOB`) and the deliveries that queued runs. */
export class HookStore {
  private readonly byJob;
  private readonly delivered;
  private readonly record;

  constructor(private readonly db: Db) {
    this.byJob = db.prepare<[number], { job_id: number; secret: string; branches: string | null; updated_at: number }>(
      'SELECT job_id, secret, branches, updated_at FROM hooks WHERE job_id = ?',
    );
    this.delivered = db.prepare<[number, string, string], { runs: string }>(
      'SELECT runs FROM hook_deliveries WHERE job_id = ? AND forge = ? AND delivery = ?',
    );
    this.record = db.prepare(
      `INSERT INTO hook_deliveries (job_id, forge, delivery, commit_sha, runs, received_at) VALUES (?, ?, ?, ?, ?, ?)`,
    );
  }

  get(jobId: number): HookRow | undefined {
    const r = this.byJob.get(jobId);
    if (!r) return undefined;
    return {
      jobId: r.job_id,
      secret: r.secret,
      branches: r.branches === null ? null : (JSON.parse(r.branches) as string[]),
      updatedAt: r.updated_at,
    };
  }

  /** Returns whether the job had no hook before. */
  set(jobId: number, secret: string, branches: string[] | null, now: number): boolean {
    const created = this.byJob.get(jobId) === undefined;
    this.db
      .prepare(
        `INSERT INTO hooks (job_id, secret, branches, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (job_id) DO UPDATE SET secret = excluded.secret, branches = excluded.branches,
         updated_at = excluded.updated_at`,
      )
      .run(jobId, secret, branches === null ? null : JSON.stringify(branches), now, now);
    return created;
  }

  remove(jobId: number): boolean {
    return this.db.prepare('DELETE FROM hooks WHERE job_id = ?').run(jobId).changes > 0;
  }

  /** Jobs with a hook (secrets left out). */
  list(): HookEntry[] {
    return (
      this.db
        .prepare(
          'SELECT jobs.name AS job, hooks.branches, hooks.updated_at FROM hooks JOIN jobs ON jobs.id = hooks.job_id ORDER BY jobs.name',
        )
        .all() as { job: string; branches: string | null; updated_at: number }[]
    ).map((r) => ({
      job: r.job,
      branches: r.branches === null ? null : (JSON.parse(r.branches) as string[]),
      updatedAt: r.updated_at,
    }));
  }

  /** The runs an earlier delivery with this id queued, if there was one. */
  delivery(jobId: number, forge: string, delivery: string): string[] | undefined {
    const r = this.delivered.get(jobId, forge, delivery);
    return r ? (JSON.parse(r.runs) as string[]) : undefined;
  }

  recordDelivery(d: Delivery, now: number): void {
    this.record.run(d.jobId, d.forge, d.delivery, d.commit, JSON.stringify(d.runs), now);
  }
}
