import { formatBytes, formatDuration, formatResult } from '@builder/protocol';
import type { SiteDeps } from '../deps.ts';
import { runView } from '../../runs/views.ts';
import type { JobRow, RunRow } from '../../store/rows.ts';
import { renderConsoleSection } from '../console-view.ts';
import { resultText, runDuration, stateLabel, time } from '../format.ts';
import { html, raw, type Html } from '../html.ts';
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

/** `/job/J/run/N`: how the run went, its script, console and artifacts. */
export function runPage(ctx: SiteDeps, job: string, number: number, query: URLSearchParams): Page {
  const { job: jobRow, run } = findRunOfJob(ctx, job, number);
  const view = runView(ctx, run, { script: true });
  const files = ctx.artifacts.forRun(run.id);
  const attempts = ctx.runs.attempts(run.id);
  const d = runDuration(run, ctx.clock.now());
  const environment = ctx.runs.environments.forRun(run.id);
  const rebuild = rebuildVerdict(ctx, run, files);
  const rebuilds = rebuildsOfRun(ctx, run, files);
  const provenance = files.length > 0 && run.finishedAt !== null ? links.provenance(run.job, run.number) : null;
  const data = {
    run: view,
    definition: jobRow.definition,
    durationMs: d,
    attempts,
    console: links.console(run.job, run.number),
    artifacts: files.map((f) => ({ ...f, url: links.artifact(run.job, run.number, f.path) })),
    environment,
    rebuild,
    rebuilds,
    provenance: provenance && { url: provenance, key: links.provenanceKey() },
  };
  const params = Object.entries(run.params);
  const earlier = attempts.filter((a) => a.attempt !== run.attempt || run.result === null);
  const body = html`<h1><a href="${links.job(run.job)}">${run.job}</a> #${run.number} on ${run.platform}</h1>
    <dl class="facts">
      ${definitionFact(jobRow.definition)}
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
      <dt>parameters</dt>
      <dd>
        ${params.length ? params.map(([k, v]) => html`<code>${k}=${v}</code> `) : html`<span class="none">none</span>`}
      </dd>
      <dt>run id</dt>
      <dd><code>${run.id}</code></dd>
    </dl>
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
    <h2>Artifacts</h2>
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
    <h2>Environment</h2>
    ${environmentSection(environment)}
    <h2>Script</h2>
    <pre>${run.script}</pre>`;
  return { meta: { title: `${run.job} #${run.number}`, feed: links.feed(run.job) }, data, body };
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
    <div class="scroll">
      <table>
        <thead>
          <tr>
            <th>path</th>
            <th>size</th>
            <th>SHA-256</th>
          </tr>
        </thead>
        <tbody>
          ${files.map(
            (f) =>
              html`<tr>
                <td><a href="${links.artifact(run.job, run.number, f.path)}" download>${f.path}</a></td>
                <td><span title="${f.size} bytes">${formatBytes(f.size)}</span></td>
                <td>
                  <a href="${links.hash(f.sha256)}"><code class="hash">${f.sha256}</code></a>
                </td>
              </tr> `,
          )}
        </tbody>
      </table>
    </div>`;
}
