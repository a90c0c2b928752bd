import { formatResult, type RunState } from '@builder/protocol';
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
