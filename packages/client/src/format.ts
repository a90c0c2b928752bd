import { formatDuration, formatResult, isTerminal, type RunView } from '@builder/protocol';

/** `5s ago`, `in 3m04s`. */
export function formatRelative(ms: number, now: number): string {
  const delta = ms - now;
  if (Math.abs(delta) < 1000) return 'now';
  const text = formatDuration(Math.abs(delta)).replace(/\.\ds$/, 's');
  return delta < 0 ? `${text} ago` : `in ${text}`;
}

/** UTC ISO 8601 without milliseconds: `2025-01-31T02:00:00Z`. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** ISO 8601 wall-clock time in an IANA zone with its offset: `2025-01-31T03:00:00+01:00`. */
export function formatInZone(ms: number, timeZone: string): string {
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    }).formatToParts(new Date(ms));
  } catch {
    return formatTime(ms); // a zone this Node does not know: UTC is still correct
  }
  const get = (type: Intl.DateTimeFormatPartTypes): number => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const [y, mo, d, h, mi, s] = [get('year'), get('month'), get('day'), get('hour'), get('minute'), get('second')];
  const wall = Date.UTC(y, mo - 1, d, h, mi, s);
  const offsetMin = Math.round((wall - Math.floor(ms / 1000) * 1000) / 60_000);
  const sign = offsetMin < 0 ? '-' : '+';
  const off =
    offsetMin === 0 ? 'Z' : `${sign}${pad2(Math.floor(Math.abs(offsetMin) / 60))}:${pad2(Math.abs(offsetMin) % 60)}`;
  return `${y}-${pad2(mo)}-${pad2(d)}T${pad2(h)}:${pad2(mi)}:${pad2(s)}${off}`;
}

export function runLabel(run: Pick<RunView, 'job' | 'number'>): string {
  return `${run.job}/${run.number}`;
}

/** `exited 0 (succeeded)`, `exited 2 (failed)`, `timeout`, `cancelled (by alice)`. */
export function formatOutcome(run: RunView): string {
  if (!run.result) return run.state;
  const result = formatResult(run.result);
  return result.startsWith(run.state) ? result : `${result} (${run.state})`;
}

/** `NAME/N on PLATFORM: exited 0 (succeeded) in 1.2s`. */
export function formatRunSummary(run: RunView): string {
  const took =
    run.startedAt !== null && run.finishedAt !== null ? ` in ${formatDuration(run.finishedAt - run.startedAt)}` : '';
  return `${runLabel(run)} on ${run.platform}: ${formatOutcome(run)}${took}`;
}

/** One line for where a run stands: `queued (no worker for freebsd-14 online)`, `running on w1`. */
export function formatRunState(run: RunView): string {
  if (isTerminal(run.state)) return formatOutcome(run);
  const attempt = run.attempt > 1 ? `, attempt ${run.attempt}/${run.maxAttempts}` : '';
  switch (run.state) {
    case 'queued':
      return `queued${run.waiting ? ` (${run.waiting}${attempt})` : attempt ? ` (${attempt.slice(2)})` : ''}`;
    case 'assigned':
      return `assigned to ${run.worker ?? '?'}${attempt}`;
    case 'running':
      return `running on ${run.worker ?? '?'}${attempt}`;
    default:
      return run.state;
  }
}

/** A compact table: columns padded to their widest cell, the last one left ragged. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  return all
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}
