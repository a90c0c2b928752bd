import { formatBytes, type RunView } from '@builder/protocol';
import { html, type Html } from '../html.ts';
import { scrollTable } from '../scroll-table.ts';
import { links } from '../links.ts';

/** Rows shown on the page; the run's JSON lists them all. */
const MAX_ROWS = 1000;

/** The run that queued this one (`after:`), as a fact of the run page. */
export function afterFact(view: RunView): Html | string {
  if (view.after === null) return '';
  const { job, number } = view.after;
  return html`<dt>after</dt>
    <dd><a href="${links.run(job, number)}">${job} #${number}</a> succeeded</dd>`;
}

/** The files the job found in $BUILDER_INPUT, with their SHA-256 and where each came from. */
export function inputsSection(view: RunView): Html | string {
  const all = view.inputs;
  if (all.length === 0) return '';
  const total = all.reduce((n, f) => n + f.size, 0);
  return html`<h2>Inputs</h2>
    <p class="muted">
      ${all.length} file${all.length === 1 ? '' : 's'}, ${formatBytes(total)}, in <code>$BUILDER_INPUT</code>
    </p>
    ${scrollTable(
      ['name', 'size', 'SHA-256', 'from'],
      all.slice(0, MAX_ROWS).map(
        (f) =>
          html`<tr>
            <td>${f.name}</td>
            <td><span title="${f.size} bytes">${formatBytes(f.size)}</span></td>
            <td>
              <a href="${links.hash(f.sha256)}"><code class="hash">${f.sha256}</code></a>
            </td>
            <td>
              ${
                f.from === null
                  ? html`<span class="muted">sent with execute</span>`
                  : html`<a href="${links.artifact(f.from.job, f.from.number, f.from.path)}"
                      >${f.from.job} #${f.from.number}: ${f.from.path}</a
                    >`
              }
            </td>
          </tr> `,
      ),
      { id: 'inputs' },
    )}`;
}
