import { definitionText, formatDuration, JobSpecSchema, type JobSpecInput, type JobView } from '@builder/protocol';

/** One line of `apply`'s plan. */
export type Change =
  | { kind: 'create'; name: string; file: string }
  | { kind: 'change'; name: string; file: string; fields: { field: string; from: string; to: string }[] }
  /** `refresh`: only the commit the file is at moved on; the job is stored again so its link follows. */
  | { kind: 'unchanged'; name: string; file: string; refresh: boolean }
  | { kind: 'unschedule'; name: string };

const COMPARED = [
  'platforms',
  'schedule',
  'timezone',
  'missed',
  'timeoutSec',
  'killGraceSec',
  'retries',
  'retryBackoffSec',
  'concurrency',
  'params',
  'alertWebhooks',
  'secrets',
  'template',
  'after',
] as const;

/** Durations, named and shown as in the file. */
const SECONDS = { timeoutSec: 'timeout', killGraceSec: 'kill_grace', retryBackoffSec: 'retry_backoff' } as const;
const FILE_KEYS: Partial<Record<string, string>> = { alertWebhooks: 'alert_webhooks' };

function duration(seconds: unknown): string {
  return formatDuration(Number(seconds) * 1000);
}

/** What applying `spec` (from `file`) changes in the live job `live` (with its scripts), if any. */
export function diffJob(spec: JobSpecInput, file: string, live: JobView | undefined): Change {
  if (live === undefined) return { kind: 'create', name: spec.name, file };
  const want = JobSpecSchema.parse(spec);
  const fields: { field: string; from: string; to: string }[] = [];
  for (const field of COMPARED) {
    const from = show(live[field]);
    const to = show(want[field]);
    if (from === to) continue;
    const seconds = SECONDS[field as keyof typeof SECONDS];
    if (seconds === undefined) fields.push({ field: FILE_KEYS[field] ?? field, from, to });
    else fields.push({ field: seconds, from: duration(live[field]), to: duration(want[field]) });
  }
  if (show(live.script ?? live.scripts) !== show(want.script ?? want.scripts)) {
    fields.push({ field: 'script', from: 'old', to: 'new' });
  }
  const livePrepare = show(live.prepare ?? live.prepares);
  const wantPrepare = show(want.prepare ?? want.prepares);
  if (livePrepare !== wantPrepare) {
    fields.push({
      field: 'prepare',
      from: livePrepare === 'none' ? 'none' : 'old',
      to: wantPrepare === 'none' ? 'none' : 'new',
    });
  }
  const from = live.definition === null ? 'none (made with schedule)' : definitionText(live.definition);
  const to = want.definition === null ? 'none' : definitionText(want.definition);
  const samePlace =
    live.definition !== null &&
    want.definition !== null &&
    live.definition.repo === want.definition.repo &&
    live.definition.path === want.definition.path;
  if (fields.length === 0 && samePlace) return { kind: 'unchanged', name: spec.name, file, refresh: from !== to };
  if (from !== to) fields.push({ field: 'definition', from, to });
  return fields.length === 0
    ? { kind: 'unchanged', name: spec.name, file, refresh: false }
    : { kind: 'change', name: spec.name, file, fields };
}

function show(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return 'none';
  return JSON.stringify(sorted(value));
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value) || value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => [k, sorted(v)]),
  );
}

/** The plan as a user reads it, one line per job (and one per changed field). */
export function describeChange(c: Change): string[] {
  switch (c.kind) {
    case 'create':
      return [`+ ${c.name} (${c.file}): create`];
    case 'change':
      return [`~ ${c.name} (${c.file}): change`, ...c.fields.map((f) => `    ${f.field}: ${f.from} → ${f.to}`)];
    case 'unchanged':
      return [`= ${c.name} (${c.file}): unchanged`];
    case 'unschedule':
      return [`- ${c.name}: unschedule (its file is not among those applied)`];
    default: {
      const never: never = c;
      throw new Error(`unknown change ${String(never)}`);
    }
  }
}
