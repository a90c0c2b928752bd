import type { Db } from './db.ts';

/** How a job's finished rebuilds compare with the runs they rebuild (by the set of files and their SHA-256). */
export interface RebuildCounts {
  rebuilds: number;
  reproducible: number;
}

/**
 * A rebuild is reproducible when it and its original made files, the same paths with the same
 * SHA-256 and no others. Counted over rebuilds that succeeded.
 */
export function rebuildCounts(db: Db, jobId: number): RebuildCounts {
  const row = db
    .prepare<[number], { rebuilds: number; reproducible: number | null }>(
      `SELECT COUNT(*) AS rebuilds, SUM(n_r > 0 AND n_r = n_o AND n_r = n_same) AS reproducible FROM (
         SELECT
           (SELECT COUNT(*) FROM artifacts WHERE run_id = r.id) AS n_r,
           (SELECT COUNT(*) FROM artifacts WHERE run_id = o.id) AS n_o,
           (SELECT COUNT(*) FROM artifacts ar JOIN artifacts ao
              ON ao.run_id = o.id AND ao.path = ar.path AND ao.sha256 = ar.sha256
            WHERE ar.run_id = r.id) AS n_same
         FROM runs r INDEXED BY runs_rebuilds JOIN runs o ON o.job_id = r.job_id AND o.number = r.rebuild_of
         WHERE r.job_id = ? AND r.rebuild_of IS NOT NULL AND r.state = 'succeeded')`,
    )
    .get(jobId)!;
  return { rebuilds: row.rebuilds, reproducible: row.reproducible ?? 0 };
}

/** The runs of a job that rebuild its run `number`, oldest first (at most `limit`). */
export function rebuildsOf(db: Db, jobId: number, number: number, limit = 20): { id: string; number: number }[] {
  return db
    .prepare<[number, number, number], { id: string; number: number }>(
      'SELECT id, number FROM runs WHERE job_id = ? AND rebuild_of = ? ORDER BY number LIMIT ?',
    )
    .all(jobId, number, limit);
}
