import { formatDuration } from '@builder/protocol';
import type { RunRow } from '../../store/rows.ts';
import { resultText, runDuration, stateLabel, time } from '../format.ts';
import { html, type Html } from '../html.ts';
import { scrollTable } from '../scroll-table.ts';
import { links } from '../links.ts';

/** Table rows of runs, shared by the job, failed and hash pages. */
export function runTable(runs: readonly RunRow[], now: number, opts: { job?: boolean } = {}): Html {
  if (runs.length === 0) return html`<p class="muted">No runs.</p>`;
  return scrollTable(
    ['run', 'platform', 'state', 'result', 'queued', 'duration', 'worker'],
    runs.map((r) => {
      const d = runDuration(r, now);
      return html`<tr>
        <td><a href="${links.run(r.job, r.number)}">${opts.job ? `${r.job}/${r.number}` : `#${r.number}`}</a></td>
        <td>${r.platform}</td>
        <td>${stateLabel(r.state)}</td>
        <td>${r.result ? resultText(r) : ''}</td>
        <td>${time(r.queuedAt)}</td>
        <td>${d === null ? '' : formatDuration(d)}</td>
        <td>${r.worker ?? ''}</td>
      </tr> `;
    }),
  );
}
