import type { ArtifactFile, Comparison } from '@builder/protocol';
import type { SiteDeps } from '../deps.ts';
import { compareRuns } from '../../reproduce/compare.ts';
import { runSide } from '../../reproduce/sides.ts';
import { html, type Html } from '../html.ts';
import { links } from '../links.ts';
import { findRun } from './run.ts';
import type { Page } from './page.ts';

/** `/job/J/compare/A/B`: what differs between two runs of a job, and whether they made the same files. */
export function comparePage(ctx: SiteDeps, job: string, a: number, b: number): Page {
  const c = compareRuns(runSide(ctx, findRun(ctx, job, a)), runSide(ctx, findRun(ctx, job, b)));
  const run = (n: number) => html`<a href="${links.run(job, n)}">#${n}</a>`;
  const body = html`<h1><a href="${links.job(job)}">${job}</a>: ${run(a)} compared with ${run(b)}</h1>
    <p id="verdict">
      ${
        c.reproducible
          ? html`<strong>reproducible</strong>: both made the same ${c.artifacts.same.length}
              file${c.artifacts.same.length === 1 ? '' : 's'}`
          : html`<strong>not the same files</strong>: ${artifactSummary(c.artifacts)}`
      }
    </p>
    <table>
      <thead>
        <tr>
          <th></th>
          <th>${run(a)}</th>
          <th>${run(b)}</th>
        </tr>
      </thead>
      <tbody>
        ${row('state', c.a.state, c.b.state)} ${row('platform', c.a.platform, c.b.platform)}
        ${row('worker', c.a.worker, c.b.worker)} ${row('commit', c.a.commit, c.b.commit)}
        ${row('base', c.a.base, c.b.base)} ${row('packages SHA-256', c.a.packagesSha256, c.b.packagesSha256)}
        ${row('script', c.script.same ? 'same' : 'differs', c.script.same ? 'same' : 'differs')}
      </tbody>
    </table>
    <h2>Parameters</h2>
    ${
      c.params.same
        ? html`<p class="muted">the same</p>`
        : html`<ul>
            ${c.params.changed.map((p) => html`<li><code>${p.name}</code>: ${p.a ?? '(unset)'} → ${p.b ?? '(unset)'}</li>`)}
          </ul>`
    }
    <h2>Inputs</h2>
    ${
      c.inputs.same
        ? html`<p class="muted">the same</p>`
        : html`<ul>
            ${c.inputs.changed.map(
              (i) =>
                html`<li>
                  <code>${i.name}</code>: <code>${i.a ?? '(none)'}</code> → <code>${i.b ?? '(none)'}</code>
                </li>`,
            )}
          </ul>`
    }
    <h2>Environment packages</h2>
    ${environmentSection(c.environment)}
    <h2>Artifacts</h2>
    ${artifactSection(c.artifacts)}
    ${
      c.script.same
        ? ''
        : html`<h2>Scripts</h2>
            <h3>#${a}</h3>
            <pre>${c.script.a}</pre>
            <h3>#${b}</h3>
            <pre>${c.script.b}</pre>`
    }`;
  return { meta: { title: `${job} #${a} vs #${b}` }, data: c, body };
}

function row(name: string, a: string | null, b: string | null): Html {
  const cell = (v: string | null) => (v === null ? html`<span class="none">—</span>` : html`<code>${v}</code>`);
  return html`<tr class="${a === b ? 'same' : 'differs'}">
    <th>${name}${a === b ? '' : ' ≠'}</th>
    <td>${cell(a)}</td>
    <td>${cell(b)}</td>
  </tr>`;
}

/** "1 changed, 2 added" — what keeps two runs from being the same build. */
export function artifactSummary(d: Comparison['artifacts']): string {
  const parts = [
    d.changed.length && `${d.changed.length} changed`,
    d.added.length && `${d.added.length} added`,
    d.removed.length && `${d.removed.length} removed`,
  ].filter(Boolean);
  if (parts.length === 0) return d.same.length === 0 ? 'no files to compare' : 'the same files';
  return `${parts.join(', ')}, ${d.same.length} the same`;
}

function environmentSection(e: Comparison['environment']): Html {
  if (!e.known) return html`<p class="muted">not known for both runs (a worker that did not report it)</p>`;
  if (e.same) return html`<p class="muted">the same packages</p>`;
  return html`<ul id="packages-diff">
    ${e.changed.map((p) => html`<li>changed <code>${p.name}</code> (${p.arch}): ${p.a} → ${p.b}</li>`)}
    ${e.added.map((p) => html`<li>added <code>${p.name}</code> ${p.version} (${p.arch})</li>`)}
    ${e.removed.map((p) => html`<li>removed <code>${p.name}</code> ${p.version} (${p.arch})</li>`)}
  </ul>`;
}

function artifactSection(d: Comparison['artifacts']): Html {
  const file = (f: ArtifactFile) => html`<code>${f.path}</code> <code class="hash">${f.sha256}</code>`;
  return html`<ul id="artifacts-diff">
    ${d.changed.map((f) => html`<li>changed ${f.path}: <code class="hash">${f.a.sha256}</code> → <code class="hash">${f.b.sha256}</code></li>`)}
    ${d.added.map((f) => html`<li>added ${file(f)}</li>`)} ${d.removed.map((f) => html`<li>removed ${file(f)}</li>`)}
    ${d.same.map((f) => html`<li>same ${file(f)}</li>`)}
  </ul>`;
}
