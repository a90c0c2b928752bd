import { formatBytes, formatDuration, formatResult, type RunUsage } from '@builder/protocol';
import type { SiteDeps } from '../deps.ts';
import { runView } from '../../runs/views.ts';
import type { JobRow, RunRow } from '../../store/rows.ts';
import { runReport } from '../../store/run-reports.ts';
import { neighbours } from '../../store/site-history.ts';
import { renderConsoleSection } from '../console-view.ts';
import { renderSummary, summarySection } from '../summary.ts';
import { queueWait, resultText, runDuration, stateLabel, time } from '../format.ts';
import { html, raw, type Html } from '../html.ts';
import { scrollTable } from '../scroll-table.ts';
import { links } from '../links.ts';
import { definitionFact } from './definition.ts';
import { environmentSection, rebuildFact, rebuildsFact, rebuildsOfRun, rebuildVerdict } from './run-environment.ts';
import { findJob } from './job.ts';
import { afterFact, inputsSection } from './run-inputs.ts';
import { PageError, type Page } from './page.ts';

export function findRun(ctx: SiteDeps, job: string, number: number): RunRow {
  return findRunOfJob(ctx, job, number).run;
}

function findRunOfJob(ctx: SiteDeps, name: string, number: number): { job: JobRow; run: RunRow } {
  const job = findJob(ctx, name);
  const run = ctx.runs.getByNumber(name, number);
  if (!run) throw new PageError(404, `job ${name} has no run ${number}`);
  return { job, run };
}

/** `/job/J/run/N`: result and summary, artifacts, console, then parameters, script and environment. */
export function runPage(ctx: SiteDeps, job: string, number: number, query: URLSearchParams): Page {
  const { job: jobRow, run } = findRunOfJob(ctx, job, number);
  const view = runView(ctx, run, { script: true });
  const files = ctx.artifacts.forRun(run.id);
  const attempts = ctx.runs.attempts(run.id);
  const d = runDuration(run, ctx.clock.now());
  const builtIn = ctx.runs.environments.forRun(run.id);
  const rebuild = rebuildVerdict(ctx, run, files);
  const rebuilds = rebuildsOfRun(ctx, run, files);
  const provenance = files.length > 0 && run.finishedAt !== null ? links.provenance(run.job, run.number) : null;
  const report = runReport(ctx.db, run.id);
  const around = neighbours(ctx.db, jobRow.id, run.platform, run.number);
  const byPath = new Map(files.map((f) => [f.path, f]));
  const summary = report.summary
    ? renderSummary(report.summary.markdown, (path) =>
        byPath.has(path) ? links.artifact(run.job, run.number, path) : undefined,
      )
    : undefined;
  const env = environment(jobRow, run);
  const data = {
    run: view,
    definition: jobRow.definition,
    durationMs: d,
    queueWaitMs: queueWait(run, ctx.clock.now()),
    attempts,
    summary:
      report.summary && summary ? { ...report.summary, html: summary.html.value, dropped: summary.dropped } : null,
    usage: report.usage,
    previous: around.previous === null ? null : { number: around.previous, url: links.run(run.job, around.previous) },
    next: around.next === null ? null : { number: around.next, url: links.run(run.job, around.next) },
    console: links.console(run.job, run.number),
    artifacts: files.map((f) => ({
      ...f,
      url: links.artifact(run.job, run.number, f.path),
      latest: links.latest(run.job, f.path, run.platform),
    })),
    environment: builtIn,
    variables: env,
    rebuild,
    rebuilds,
    provenance: provenance && { url: provenance, key: links.provenanceKey() },
  };
  const params = Object.entries(run.params);
  const earlier = attempts.filter((a) => a.attempt !== run.attempt || run.result === null);
  const body = html`<h1><a href="${links.job(run.job)}">${run.job}</a> #${run.number} on ${run.platform}</h1>
    <nav class="pager" aria-label="runs of ${run.job} on ${run.platform}">
      ${
        around.previous !== null
          ? html`<a rel="prev" id="run-previous" href="${links.run(run.job, around.previous)}"
              >← #${around.previous}</a
            >`
          : html`<span class="muted">no earlier run</span>`
      }
      ${
        around.next !== null
          ? html`<a rel="next" id="run-next" href="${links.run(run.job, around.next)}">#${around.next} →</a>`
          : html`<span class="muted">no later run</span>`
      }
    </nav>
    <dl class="facts">
      <dt>result</dt>
      <dd id="run-result">${stateLabel(run.state)} ${run.result ? resultText(run) : ''}</dd>
      ${
        view.waiting
          ? html`<dt>waiting</dt>
              <dd>${view.waiting}</dd>`
          : ''
      }
      ${
        run.cancelReason
          ? html`<dt>cancelled</dt>
              <dd>${run.cancelReason}</dd>`
          : ''
      }
      <dt>duration</dt>
      <dd>
        ${d === null ? html`<span class="none">—</span>` : formatDuration(d)}${run.finishedAt === null && d !== null ? ' so far' : ''}
      </dd>
      ${usageFacts(report.usage)}
      <dt>queued</dt>
      <dd>${time(run.queuedAt)}</dd>
      <dt>started</dt>
      <dd>${time(run.startedAt)}</dd>
      <dt>finished</dt>
      <dd>${time(run.finishedAt)}</dd>
      <dt>trigger</dt>
      <dd>${run.trigger}</dd>
      <dt>worker</dt>
      <dd>${run.worker ?? html`<span class="none">—</span>`}</dd>
      ${afterFact(view)}
      ${
        run.ref !== null
          ? html`<dt>source</dt>
              <dd>
                <code>${run.ref}</code> at
                ${run.commit ? html`<code>${run.commit}</code>` : html`<span class="none">not fetched yet</span>`}
              </dd>`
          : ''
      }
      ${rebuild ? rebuildFact(run, rebuild) : ''} ${rebuildsFact(run, rebuilds)}
      <dt>attempt</dt>
      <dd>${run.attempt} of ${run.maxAttempts}</dd>
      ${definitionFact(jobRow.definition)}
      <dt>run id</dt>
      <dd><code>${run.id}</code></dd>
    </dl>
    ${report.summary && summary ? summarySection(summary, report.summary.truncated) : ''}
    <section aria-labelledby="artifacts-heading">
      <h2 id="artifacts-heading">Artifacts</h2>
      ${artifactTable(run, files)}
      ${
        provenance
          ? html`<p id="provenance">
              Provenance: <a href="${provenance}">provenance.json</a> (SLSA v1 in a DSSE envelope), signed with the
              server’s key <a href="${links.provenanceKey()}">provenance-key.pem</a>
              <code class="hash">${ctx.provenanceKey.keyId}</code>; check a file with
              <code>builder-client verify FILE --run ${run.job}/${run.number}</code>.
            </p>`
          : ''
      }
    </section>
    ${
      earlier.length
        ? html`<h2>Attempts</h2>
            <ul>
              ${earlier.map(
                (a) =>
                  html`<li>attempt ${a.attempt}${a.worker ? ` on ${a.worker}` : ''}: ${formatResult(a.result)}</li>`,
              )}
            </ul>`
        : ''
    }
    ${raw(renderConsoleSection(ctx, run, query))} ${inputsSection(view)}
    <section aria-labelledby="parameters-heading">
      <h2 id="parameters-heading">Parameters</h2>
      ${params.length ? keyValueTable(params, 'parameter') : html`<p class="muted">None.</p>`}
    </section>
    <section aria-labelledby="script-heading">
      <h2 id="script-heading">Script</h2>
      ${
        run.prepare !== null
          ? html`<h3>Prepare step</h3>
              <p class="muted">Run first, as root with network; then the build step below, unprivileged without.</p>
              <pre id="run-prepare" tabindex="0">${run.prepare}</pre>
              <h3>Build step</h3>`
          : ''
      }
      <pre tabindex="0">${run.script}</pre>
    </section>
    <section aria-labelledby="environment-heading">
      <h2 id="environment-heading">Environment</h2>
      ${environmentSection(builtIn)}
      <h3>Variables</h3>
      <p class="muted">What builder set for the job besides its parameters (secrets by name only).</p>
      ${keyValueTable(Object.entries(env), 'variable')}
    </section>`;
  return { meta: { title: `${run.job} #${run.number}`, feed: links.feed(run.job) }, data, body };
}

function usageFacts(usage: RunUsage | null): Html | string {
  if (!usage) return '';
  const how =
    usage.source === 'cgroup'
      ? "from the run's cgroup"
      : usage.source === 'cgroup+proc'
        ? "memory from the run's cgroup, CPU sampled from /proc"
        : "the job's processes sampled from /proc";
  return html`<dt>CPU time</dt>
    <dd id="run-cpu" title="${how}">
      ${usage.cpuMs === 0 && usage.source !== 'cgroup' ? 'under 10ms' : formatDuration(usage.cpuMs)}
    </dd>
    <dt>peak memory</dt>
    <dd id="run-memory" title="${how}">
      ${usage.peakMemoryBytes === null ? html`<span class="none">—</span>` : formatBytes(usage.peakMemoryBytes)}
    </dd>`;
}

function keyValueTable(rows: [string, string][], what: string): Html {
  return scrollTable(
    [what, 'value'],
    rows.map(
      ([k, v]) =>
        html`<tr>
          <th scope="row"><code>${k}</code></th>
          <td><code class="value">${v}</code></td>
        </tr>`,
    ),
    { className: 'kv' },
  );
}

/** The BUILDER_* variables the job saw (as the worker sets them), and which secrets it got. */
function environment(job: JobRow, run: RunRow): Record<string, string> {
  const env: Record<string, string> = {
    BUILDER_JOB: run.job,
    BUILDER_RUN: String(run.number),
    BUILDER_RUN_ID: run.id,
    BUILDER_ATTEMPT: String(run.attempt),
    BUILDER_PLATFORM: run.platform,
    BUILDER_OUTPUT: "(the run's artifact dir)",
    BUILDER_SUMMARY: '(Markdown shown at the top of this page)',
  };
  if (run.ref !== null) env.BUILDER_REF = run.ref;
  if (run.commit !== null) env.BUILDER_COMMIT = run.commit;
  for (const name of job.secrets) env[name] = '(secret, value hidden)';
  return env;
}

/** Rows shown on the page; a run with more lists them all in its JSON (`/api/job/J/run/N`). */
const MAX_ROWS = 1000;

function artifactTable(run: RunRow, all: { path: string; size: number; sha256: string }[]): Html {
  if (all.length === 0) return html`<p class="muted">No artifacts.</p>`;
  const total = all.reduce((n, f) => n + f.size, 0);
  const files = all.slice(0, MAX_ROWS);
  const more =
    all.length > MAX_ROWS
      ? html`; the first ${MAX_ROWS} are shown, <a href="/api${links.run(run.job, run.number)}">all in JSON</a>`
      : '';
  return html`<p class="muted">${all.length} file${all.length === 1 ? '' : 's'}, ${formatBytes(total)}${more}</p>
    ${scrollTable(
      ['path', 'size', 'stable link', 'SHA-256'],
      files.map(
        (f) =>
          html`<tr>
            <td><a href="${links.artifact(run.job, run.number, f.path)}" download>${f.path}</a></td>
            <td><span title="${f.size} bytes">${formatBytes(f.size)}</span></td>
            <td>
              <a
                class="latest"
                href="${links.latest(run.job, f.path, run.platform)}"
                title="always the newest successful run's ${f.path}"
                >latest</a
              >
            </td>
            <td>
              <a href="${links.hash(f.sha256)}"><code class="hash">${f.sha256}</code></a>
            </td>
          </tr> `,
      ),
    )}`;
}
