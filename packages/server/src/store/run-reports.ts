import type { RunSummary, RunUsage } from '@builder/protocol';
import { type Db, perDatabase } from './db.ts';

/** What a run's final attempt reported about itself besides its result. */
export interface RunReport {
  summary: RunSummary | null;
  usage: RunUsage | null;
}

interface RawReport {
  summary: string | null;
  summary_truncated: number;
  cpu_ms: number | null;
  peak_memory: number | null;
  usage_source: string | null;
}

type SaveArgs = [string, string | null, number, number | null, number | null, string | null];

/** The statements of `saveRunReport`, prepared once per database (it runs with every finished run). */
const statementsFor = perDatabase((db) => ({
  clear: db.prepare<[string]>('DELETE FROM run_reports WHERE run_id = ?'),
  upsert: db.prepare<SaveArgs>(
    `INSERT INTO run_reports (run_id, summary, summary_truncated, cpu_ms, peak_memory, usage_source)
     VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (run_id) DO UPDATE SET summary = excluded.summary, summary_truncated = excluded.summary_truncated,
       cpu_ms = excluded.cpu_ms, peak_memory = excluded.peak_memory, usage_source = excluded.usage_source`,
  ),
}));

/**
 * Record an attempt's summary and usage; a later attempt replaces an earlier one's (the page shows
 * the attempt that decided the run). Nothing reported: nothing stored, and nothing of an earlier
 * attempt kept either.
 */
export function saveRunReport(db: Db, runId: string, report: RunReport): void {
  const { clear, upsert } = statementsFor(db);
  if (!report.summary && !report.usage) {
    clear.run(runId);
    return;
  }
  upsert.run(
    runId,
    report.summary?.markdown ?? null,
    report.summary?.truncated ? 1 : 0,
    report.usage?.cpuMs ?? null,
    report.usage?.peakMemoryBytes ?? null,
    report.usage?.source ?? null,
  );
}

export function runReport(db: Db, runId: string): RunReport {
  const row = db.prepare('SELECT * FROM run_reports WHERE run_id = ?').get(runId) as RawReport | undefined;
  return row ? fromRaw(row) : { summary: null, usage: null };
}

/** The usage of many runs at once (the chart's tooltips), by run id. */
export function runUsages(db: Db, runIds: readonly string[]): Map<string, RunUsage> {
  const out = new Map<string, RunUsage>();
  // chunks well under SQLite's variable limit
  for (let i = 0; i < runIds.length; i += 500) {
    const ids = runIds.slice(i, i + 500);
    const rows = db
      .prepare(
        `SELECT run_id, cpu_ms, peak_memory, usage_source FROM run_reports
         WHERE cpu_ms IS NOT NULL AND run_id IN (${ids.map(() => '?').join(', ')})`,
      )
      .all(...ids) as (RawReport & { run_id: string })[];
    for (const r of rows) {
      const usage = fromRaw({ ...r, summary: null, summary_truncated: 0 }).usage;
      if (usage) out.set(r.run_id, usage);
    }
  }
  return out;
}

function fromRaw(row: RawReport): RunReport {
  return {
    summary: row.summary === null ? null : { markdown: row.summary, truncated: row.summary_truncated === 1 },
    usage:
      row.cpu_ms === null
        ? null
        : {
            cpuMs: row.cpu_ms,
            peakMemoryBytes: row.peak_memory,
            source: row.usage_source === 'cgroup' || row.usage_source === 'cgroup+proc' ? row.usage_source : 'proc',
          },
  };
}
