import { formatDuration, formatResult, type RunState } from '@builder/protocol';
import type { RunRow } from '../store/rows.ts';
import { html, type Html } from './html.ts';

/**
 * `2025-01-31 03:00:12 UTC` in a `<time>` carrying the exact ISO instant; the site's script
 * (browser/site.ts) makes it read "3 minutes ago", with this text as its title.
 */
export function time(ms: number | null): Html {
  if (ms === null) return html`<span class="none">—</span>`;
  const iso = new Date(ms).toISOString();
  const text = `${iso.slice(0, 19).replace('T', ' ')} UTC`;
  return html`<time datetime="${iso}" title="${text}" data-rel>${text}</time>`;
}

/** How long the run ran (or has been running), or null before it started. */
export function runDuration(run: RunRow, now: number): number | null {
  if (run.startedAt === null) return null;
  return (run.finishedAt ?? now) - run.startedAt;
}

/** The state as a coloured label; the result (`exited 3`) when there is one. */
export function stateLabel(state: RunState): Html {
  return html`<span class="state state-${state}">${state}</span>`;
}

export function resultText(run: RunRow): string {
  return run.result ? formatResult(run.result) : run.state;
}

/** From queued to started (or until now, while it waits); null for a run that never started. */
export function queueWait(run: RunRow, now: number): number | null {
  if (run.startedAt === null) return run.finishedAt === null ? now - run.queuedAt : null;
  return Math.max(0, run.startedAt - run.queuedAt);
}

/** `2026-01-15 03:00 Europe/Berlin`: an instant as the clock of a job's time zone reads it. */
export function zonedTime(ms: number, timeZone: string): string {
  try {
    const parts = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    }).formatToParts(ms);
    const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
    return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')} ${timeZone}`;
  } catch {
    return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  }
}

/** `(ran 3m04s)` / `(running 12s)` after a run's time in a list; nothing before it started. */
export function durationNote(run: RunRow, now: number): Html | string {
  const d = runDuration(run, now);
  if (d === null) return '';
  return html`<span class="muted">(${run.finishedAt === null ? 'running' : 'ran'} ${formatDuration(d)})</span>`;
}
