import { definitionText, type JobDefinition } from '@builder/protocol';
import { html, type Html } from '../html.ts';

/** The `defined in` fact of the job and run pages: the forge's page of the file, or `repo@commit:path`. */
export function definitionFact(d: JobDefinition | null): Html | string {
  if (d === null) return '';
  const text = definitionText(d);
  return html`<dt>defined in</dt>
    <dd id="definition">
      ${d.url === undefined ? html`<code>${text}</code>` : html`<a href="${d.url}">${text}</a>`}
    </dd>`;
}
