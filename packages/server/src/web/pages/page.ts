import type { Html } from '../html.ts';
import type { PageMeta } from '../layout.ts';

/** A page's answer: `data` is its JSON twin, `body` the HTML of the same data. */
export interface Page {
  meta: PageMeta;
  data: unknown;
  body: Html;
  status?: number;
}

/** A request the page cannot answer: unknown job or run (404), a malformed query (400). */
export class PageError extends Error {
  constructor(
    readonly status: 400 | 404,
    message: string,
  ) {
    super(message);
    this.name = 'PageError';
  }
}
