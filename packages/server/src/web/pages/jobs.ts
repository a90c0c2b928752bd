import type { SiteDeps } from '../deps.ts';
import { jobView, runView } from '../../runs/views.ts';
import { latestPerPlatform } from '../../store/site-queries.ts';
import { durationNote, resultText, stateLabel, time } from '../format.ts';
import { renderSparkline, SPARK_RUNS } from '../chart.ts';
import { html, raw } from '../html.ts';
import { scrollTable } from '../scroll-table.ts';
import { links } from '../links.ts';
import { chartRuns } from './job-history.ts';
import type { Page } from './page.ts';

/** `/`: every job with its newest run on each platform and its badge. */
export function jobsPage(ctx: SiteDeps): Page {
  const entries = ctx.jobs.list().map((job) => {
    const last = ctx.runs.latest({ job: job.id });
    const latest = latestPerPlatform(ctx.db, job.id);
    // platforms the job names first, in its order; then ones it used to run on
    const ordered = [
      ...job.platforms.map((p) => ({ platform: p, run: latest.find((r) => r.platform === p) ?? null })),
      ...latest.filter((r) => !job.platforms.includes(r.platform)).map((r) => ({ platform: r.platform, run: r })),
    ];
    return { job, last, ordered, history: chartRuns(ctx, job, SPARK_RUNS) };
  });
  const data = {
    jobs: entries.map((e) => ({
      job: jobView(e.job, { lastRun: e.last ? runView(ctx, e.last) : null }),
      latest: e.ordered.map((o) => ({ platform: o.platform, run: o.run ? runView(ctx, o.run) : null })),
      /** The sparkline's runs, oldest first. */
      history: e.history,
    })),
  };
  const body = html`<h1>Jobs</h1>
    ${
      entries.length === 0
        ? html`<p class="muted">No jobs yet. Create one with <code>builder-client schedule</code>.</p>`
        : scrollTable(
            ['job', 'schedule', 'latest run per platform', 'recent runs', 'status'],
            entries.map(
              (e) =>
                html`<tr>
                  <td><a href="${links.job(e.job.name)}">${e.job.name}</a></td>
                  <td>${e.job.schedule ?? html`<span class="muted">on demand</span>`}</td>
                  <td>
                    <div class="platforms">
                      ${e.ordered.map((o) =>
                        o.run
                          ? html`<span
                              >${o.platform}:
                              <a href="${links.run(o.run.job, o.run.number)}">#${o.run.number}</a>
                              ${stateLabel(o.run.state)} ${o.run.result ? resultText(o.run) : ''}
                              ${time(o.run.finishedAt ?? o.run.queuedAt)} ${durationNote(o.run, ctx.clock.now())}</span
                            >`
                          : html`<span>${o.platform}: <span class="muted">never ran</span></span>`,
                      )}
                    </div>
                  </td>
                  <td>${raw(renderSparkline(e.job.name, e.history))}</td>
                  <td>
                    <a href="${links.job(e.job.name)}"
                      ><img src="${links.badge(e.job.name)}" alt="${e.job.name} status" height="20"
                    /></a>
                  </td>
                </tr> `,
            ),
          )
    }`;
  return { meta: { title: 'Jobs' }, data, body };
}
