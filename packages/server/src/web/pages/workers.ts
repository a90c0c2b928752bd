import type { SiteDeps } from '../deps.ts';
import { runView, workerView } from '../../runs/views.ts';
import type { RunRow } from '../../store/rows.ts';
import { durationNote, time } from '../format.ts';
import { html } from '../html.ts';
import { scrollTable } from '../scroll-table.ts';
import { links } from '../links.ts';
import type { Page } from './page.ts';

/** `/workers`: who is connected and what each one runs right now; who was, and since when not. */
export function workersPage(ctx: SiteDeps): Page {
  const workers = ctx.registry.all().sort((a, b) => a.name.localeCompare(b.name));
  const connected = new Set(workers.map((w) => w.name));
  const gone = ctx.workers.list().filter((w) => !connected.has(w.name));
  const running = new Map<string, RunRow[]>();
  for (const w of workers) {
    running.set(
      w.name,
      [...w.runs].map((id) => ctx.runs.get(id)).filter((r): r is RunRow => r !== undefined),
    );
  }
  const data = {
    workers: workers.map((w) => ({ ...workerView(w), busy: w.runs.size, slots: w.capacity })),
    disconnected: gone.map((w) => ({
      name: w.name,
      platform: w.platform,
      labels: w.labels,
      slots: w.capacity,
      executor: w.executor,
      connected: false,
      /** When its connection closed (or it was last heard of). */
      since: w.lastSeenAt,
    })),
    running: [...running.values()].flat().map((r) => runView(ctx, r)),
  };
  const body = html`<h1>Workers</h1>
    <section aria-labelledby="connected-heading">
      <h2 id="connected-heading">Connected</h2>
      ${
        workers.length === 0
          ? html`<p class="muted">No worker is connected.</p>`
          : scrollTable(
              ['name', 'platform', 'executor', 'busy / slots', 'labels', 'connected', 'last seen', 'running'],
              workers.map(
                (w) =>
                  html`<tr>
                    <td>${w.name}</td>
                    <td>${w.platform}</td>
                    <td>${w.executor}</td>
                    <td class="slots">${w.runs.size} / ${w.capacity}</td>
                    <td>${w.labels.join(', ')}</td>
                    <td>${time(w.connectedAt)}</td>
                    <td>${time(w.lastSeenAt)}</td>
                    <td>
                      ${(running.get(w.name) ?? []).map(
                        (r) =>
                          html`<a href="${links.run(r.job, r.number)}">${r.job}/${r.number}</a>
                            ${durationNote(r, ctx.clock.now())} `,
                      )}
                    </td>
                  </tr> `,
              ),
            )
      }
    </section>
    <section aria-labelledby="disconnected-heading">
      <h2 id="disconnected-heading">Disconnected</h2>
      ${
        gone.length === 0
          ? html`<p class="muted">None: every worker that ever connected is connected.</p>`
          : scrollTable(
              ['name', 'platform', 'executor', 'slots', 'labels', 'disconnected since'],
              gone.map(
                (w) =>
                  html`<tr>
                    <td>${w.name}</td>
                    <td>${w.platform}</td>
                    <td>${w.executor}</td>
                    <td>${w.capacity}</td>
                    <td>${w.labels.join(', ')}</td>
                    <td>${time(w.lastSeenAt)}</td>
                  </tr> `,
              ),
            )
      }
    </section>`;
  return { meta: { title: 'Workers' }, data, body };
}
