import { formatBytes, formatDuration, RUN_STATES, type RunState } from '@builder/protocol';
import type { SiteDeps } from '../deps.ts';
import { jobView, runView } from '../../runs/views.ts';
import type { JobRow } from '../../store/rows.ts';
import { rebuildCounts } from '../../store/rebuilds.ts';
import { runsPage } from '../../store/site-queries.ts';
import { latestSucceededPerPlatform } from '../../store/site-history.ts';
import { CHART_RUNS, renderChart } from '../chart.ts';
import { queueWait, runDuration, time, zonedTime } from '../format.ts';
import { html, raw, type Html } from '../html.ts';
import { links } from '../links.ts';
import { definitionFact } from './definition.ts';
import { PageError, type Page } from './page.ts';
import { chartRuns } from './job-history.ts';
import { runTable } from './run-cells.ts';

export const RUNS_PER_PAGE = 50;

/** A job by name, unscheduled ones included: their runs are still linked from everywhere. */
export function findJob(ctx: SiteDeps, name: string): JobRow {
  const job = ctx.jobs.getAny(name);
  if (!job) throw new PageError(404, `no job named ${name}`);
  return job;
}

/** `?page=N` (from 1); anything else is a 400, not a silent first page. */
export function pageNumber(query: URLSearchParams): number {
  const p = query.get('page');
  if (p === null || p === '') return 1;
  if (!/^[1-9][0-9]{0,8}$/.test(p)) throw new PageError(400, `page must be a positive integer, not ${p}`);
  return Number(p);
}

function stateFilter(query: URLSearchParams): RunState | undefined {
  const s = query.get('state');
  if (s === null || s === '') return undefined;
  if (!(RUN_STATES as string[]).includes(s)) {
    throw new PageError(400, `state must be one of ${RUN_STATES.join(', ')}, not ${s}`);
  }
  return s as RunState;
}

/** `/job/J`: definition, scripts and runs, paginated, filtered by `?platform=` and `?state=`. */
export function jobPage(ctx: SiteDeps, name: string, query: URLSearchParams): Page {
  const job = findJob(ctx, name);
  const page = pageNumber(query);
  const platform = query.get('platform') || undefined;
  const state = stateFilter(query);
  const { runs, total } = runsPage(
    ctx.db,
    { jobId: job.id, platform, state },
    RUNS_PER_PAGE,
    (page - 1) * RUNS_PER_PAGE,
  );
  const pages = Math.max(1, Math.ceil(total / RUNS_PER_PAGE));
  const last = ctx.runs.latest({ job: job.id });
  const rebuilds = rebuildCounts(ctx.db, job.id);
  const latest = latestSucceededPerPlatform(ctx.db, job.id).map((run) => {
    const files = ctx.artifacts.forRun(run.id);
    return {
      platform: run.platform,
      run: run.number,
      url: links.run(job.name, run.number),
      finishedAt: run.finishedAt,
      total: files.length,
      files: files.slice(0, LATEST_FILES).map((f) => ({
        ...f,
        url: links.artifact(job.name, run.number, f.path),
        latest: links.latest(job.name, f.path, run.platform),
      })),
    };
  });
  const chart = chartRuns(ctx, job, CHART_RUNS);
  // a push hook's address and branches (never its secret): what a forge is pointed at
  const hookRow = ctx.hooks.get(job.id);
  const hook = hookRow && {
    url: `${ctx.publicUrl ?? ''}/hooks/${encodeURIComponent(job.name)}`,
    branches: hookRow.branches,
  };
  const data = {
    job: jobView(job, { script: true, lastRun: last ? runView(ctx, last) : null }),
    unscheduled: job.deletedAt !== null,
    nextRun: job.nextRunAt === null ? null : { at: job.nextRunAt, local: zonedTime(job.nextRunAt, job.timezone) },
    latestArtifacts: latest,
    chart: { svg: links.chart(job.name), runs: chart },
    runs: runs.map((r) => ({
      ...runView(ctx, r),
      durationMs: runDuration(r, ctx.clock.now()),
      queueWaitMs: queueWait(r, ctx.clock.now()),
    })),
    filter: { platform: platform ?? null, state: state ?? null },
    page,
    pages,
    total,
    rebuilds,
    hook: hook ?? null,
  };
  const pageLink = (n: number) => links.job(job.name, { platform, state, page: n === 1 ? undefined : n });
  const body = html`<h1>${job.name}</h1>
    ${job.deletedAt !== null ? html`<p class="muted">Unscheduled ${time(job.deletedAt)}; its runs are kept.</p>` : ''}
    <p>
      <img src="${links.badge(job.name)}" alt="${job.name} status" height="20" />
      <a href="${links.feed(job.name)}">feed</a>
    </p>
    <dl class="facts">
      <dt>platforms</dt>
      <dd>${job.platforms.join(', ')}</dd>
      <dt>schedule</dt>
      <dd id="job-schedule">
        ${job.schedule === null ? 'on demand' : html`<code>${job.schedule}</code> in ${job.timezone} (missed: ${job.missed})`}
      </dd>
      ${
        job.nextRunAt !== null
          ? html`<dt>next run</dt>
              <dd id="job-next">${time(job.nextRunAt)} (${zonedTime(job.nextRunAt, job.timezone)})</dd>`
          : ''
      }
      ${
        hook
          ? html`<dt>push hook</dt>
              <dd id="job-hook">
                <code>${hook.url}</code>, builds pushes to
                ${hook.branches === null ? html`its source's ref` : hook.branches.map((b) => html`<code>${b}</code> `)}
              </dd>`
          : ''
      }
    </dl>
    <section aria-labelledby="latest-heading">
      <h2 id="latest-heading">Latest artifacts</h2>
      ${
        latest.length === 0
          ? html`<p class="muted">No successful run yet.</p>`
          : latest.map(
              (l) =>
                html`<h3>${l.platform}: <a href="${l.url}">#${l.run}</a> ${time(l.finishedAt)}</h3>
                  ${
                    l.files.length === 0
                      ? html`<p class="muted">No artifacts.</p>`
                      : html`<ul class="latest-artifacts">
                          ${l.files.map(
                            (f) =>
                              html`<li>
                                <a href="${f.latest}">${f.path}</a>
                                <span class="muted">${formatBytes(f.size)}</span>
                              </li>`,
                          )}
                        </ul>`
                  }
                  ${
                    l.total > l.files.length
                      ? html`<p class="muted">
                          ${l.total - l.files.length} more in <a href="${l.url}">run #${l.run}</a>
                        </p>`
                      : ''
                  }`,
            )
      }
    </section>
    <section aria-labelledby="chart-heading">
      <h2 id="chart-heading">History</h2>
      <figure class="chart">
        ${raw(renderChart(job.name, chart))}
        <figcaption class="muted">
          Duration and queue wait of the last ${chart.length} run${chart.length === 1 ? '' : 's'};
          <a href="${links.chart(job.name)}">as an image</a>.
        </figcaption>
      </figure>
    </section>
    ${
      rebuilds.rebuilds > 0
        ? html`<p id="rebuilds">
            Reproducible rebuilds: ${rebuilds.reproducible} of ${rebuilds.rebuilds} made the same files as the run they
            rebuilt.
          </p>`
        : ''
    }
    <section aria-labelledby="runs-heading">
      <h2 id="runs-heading">Runs</h2>
      <form class="filter" method="get" action="${links.job(job.name)}">
        <label
          >platform
          <select name="platform">
            <option value="">all</option>
            ${[...new Set([...job.platforms, ...(platform ? [platform] : [])])].map(
              (p) => html`<option value="${p}" ${p === platform ? html` selected` : ''}>${p}</option>`,
            )}
          </select></label
        >
        <label
          >state
          <select name="state">
            <option value="">all</option>
            ${RUN_STATES.map((s) => html`<option value="${s}" ${s === state ? html` selected` : ''}>${s}</option>`)}
          </select></label
        >
        <button type="submit">filter</button>
      </form>
      <p class="muted">${total} run${total === 1 ? '' : 's'}${pages > 1 ? `, page ${page} of ${pages}` : ''}</p>
      ${runTable(runs, ctx.clock.now())}
      <nav class="pager" aria-label="pages of runs">
        ${page > 1 ? html`<a rel="prev" href="${pageLink(page - 1)}">← newer</a>` : ''}
        ${page < pages ? html`<a rel="next" href="${pageLink(page + 1)}">older →</a>` : ''}
      </nav>
    </section>
    <details class="definition">
      <summary>Definition</summary>
      ${definition(job)}
    </details>`;
  return { meta: { title: job.name, feed: links.feed(job.name) }, data, body };
}

/** Files listed per platform under "Latest artifacts"; the run page has them all. */
const LATEST_FILES = 50;

function definition(job: JobRow): Html {
  const scripts: [string, string][] =
    job.scripts === null
      ? [['Script', job.script]]
      : Object.entries(job.scripts).map(([p, s]) => [`Script on ${p}`, s]);
  const params = Object.entries(job.params);
  return html`<dl class="facts">
      ${definitionFact(job.definition)}
      <dt>platforms</dt>
      <dd>${job.platforms.join(', ')}</dd>
      <dt>timeout</dt>
      <dd>${formatDuration(job.timeoutSec * 1000)} (kill grace ${formatDuration(job.killGraceSec * 1000)})</dd>
      <dt>retries</dt>
      <dd>${job.retries}${job.retries > 0 ? ` (backoff ${formatDuration(job.retryBackoffSec * 1000)})` : ''}</dd>
      <dt>concurrency</dt>
      <dd>${job.concurrency}</dd>
      ${
        params.length
          ? html`<dt>parameters</dt>
              <dd>${params.map(([k, v]) => html`<code>${k}=${v}</code> `)}</dd>`
          : ''
      }
      ${
        job.after
          ? html`<dt>after</dt>
              <dd>each success of <a href="${links.job(job.after)}">${job.after}</a>, with its artifacts as inputs</dd>`
          : ''
      }
      ${
        job.source
          ? html`<dt>source</dt>
              <dd><code>${job.source.git}</code> at <code>${job.source.ref}</code></dd>`
          : ''
      }
      ${
        job.template
          ? html`<dt>template</dt>
              <dd>
                ${job.template.name} ${Object.entries(job.template.vars).map(([k, v]) => html`<code>${k}=${v}</code> `)}
              </dd>`
          : ''
      }
    </dl>
    ${scripts.map(
      ([title, text]) =>
        html`<h3>${title}</h3>
          <pre tabindex="0">${text}</pre>`,
    )}`;
}
