import type { SiteDeps } from '../deps.ts';
import { runView, workerView } from '../../runs/views.ts';
import type { RunRow } from '../../store/rows.ts';
import { time } from '../format.ts';
import { html } from '../html.ts';
import { links } from '../links.ts';
import type { Page } from './page.ts';

/** `/workers`: who is connected and what each one runs right now. */
export function workersPage(ctx: SiteDeps): Page {
  const workers = ctx.registry.all().sort((a, b) => a.name.localeCompare(b.name));
  const running = new Map<string, RunRow[]>();
  for (const w of workers) {
    running.set(
      w.name,
      [...w.runs].map((id) => ctx.runs.get(id)).filter((r): r is RunRow => r !== undefined),
    );
  }
  const data = {
    workers: workers.map(workerView),
    running: [...running.values()].flat().map((r) => runView(ctx, r)),
  };
  const body = html`<h1>Workers</h1>
    ${
      workers.length === 0
        ? html`<p class="muted">No worker is connected.</p>`
        : html`<div class="scroll">
            <table>
              <thead>
                <tr>
                  <th>name</th>
                  <th>platform</th>
                  <th>labels</th>
                  <th>capacity</th>
                  <th>executor</th>
                  <th>connected</th>
                  <th>running</th>
                </tr>
              </thead>
              <tbody>
                ${workers.map(
                  (w) =>
                    html`<tr>
                      <td>${w.name}</td>
                      <td>${w.platform}</td>
                      <td>${w.labels.join(', ')}</td>
                      <td>${w.runs.size} of ${w.capacity}</td>
                      <td>${w.executor}</td>
                      <td>${time(w.connectedAt)}</td>
                      <td>
                        ${(running.get(w.name) ?? []).map((r) => html`<a href="${links.run(r.job, r.number)}">${r.job}/${r.number}</a> `)}
                      </td>
                    </tr> `,
                )}
              </tbody>
            </table>
          </div>`
    }`;
  return { meta: { title: 'Workers' }, data, body };
}
