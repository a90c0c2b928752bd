import { html, type Html, type Interpolation } from './html.ts';

/**
 * Every table of the site: it scrolls sideways inside its wrapper on a narrow screen, and the
 * wrapper takes keyboard focus (a region that scrolls must be reachable without a pointer);
 * every column head is scoped to its column.
 */
export function scrollTable(
  heads: readonly Interpolation[],
  rows: Interpolation,
  table: { id?: string; className?: string } = {},
): Html {
  return html`<div class="scroll" tabindex="0">
    <table${table.id ? html` id="${table.id}"` : ''}${table.className ? html` class="${table.className}"` : ''}>
      <thead>
        <tr>
          ${heads.map((h) => html`<th scope="col">${h}</th>`)}
        </tr>
      </thead>
      <tbody>
        ${rows}
      </tbody>
    </table>
  </div>`;
}
