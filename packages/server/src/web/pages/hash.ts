import { formatBytes, SHA256_PATTERN } from '@builder/protocol';
import type { SiteDeps } from '../deps.ts';
import { time } from '../format.ts';
import { html } from '../html.ts';
import { scrollTable } from '../scroll-table.ts';
import { links } from '../links.ts';
import { PageError, type Page } from './page.ts';

/** `/hash?sha256=H`: which runs produced a file with these bytes. */
export function hashPage(ctx: SiteDeps, query: URLSearchParams): Page {
  const given = (query.get('sha256') ?? '').trim();
  const sha256 = given.toLowerCase();
  if (!SHA256_PATTERN.test(sha256)) {
    throw new PageError(400, given ? `not a SHA-256 (64 hex digits): ${given}` : 'give ?sha256= (64 hex digits)');
  }
  const origins = ctx.artifacts.withSha(sha256);
  const files = origins.map((o) => ({ ...o, url: links.artifact(o.job, o.number, o.path) }));
  const body = html`<h1>Files with SHA-256 <code class="hash">${sha256}</code></h1>
    ${
      files.length === 0
        ? html`<p class="muted">No run produced a file with this hash.</p>`
        : scrollTable(
            ['run', 'platform', 'path', 'size', 'finished'],
            files.map(
              (f) =>
                html`<tr>
                  <td><a href="${links.run(f.job, f.number)}">${f.job}/${f.number}</a></td>
                  <td>${f.platform}</td>
                  <td><a href="${f.url}" download>${f.path}</a></td>
                  <td>${formatBytes(f.size)}</td>
                  <td>${time(f.finishedAt)}</td>
                </tr> `,
            ),
          )
    }`;
  return { meta: { title: `SHA-256 ${sha256.slice(0, 12)}…` }, data: { sha256, files }, body };
}
