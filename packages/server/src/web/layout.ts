import { html, type Html } from './html.ts';
import { links } from './links.ts';

export interface PageMeta {
  title: string;
  /** An Atom feed for this page's runs, announced to feed readers. */
  feed?: string;
}

/** The document around every page: no inline script or style, one stylesheet. */
export function layout(meta: PageMeta, body: Html, version: string): Html {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${meta.title} · builder</title>
        <link rel="stylesheet" href="/static/site.css" />
        <link rel="icon" href="/static/favicon.svg" type="image/svg+xml" />
        <link
          rel="alternate"
          type="application/atom+xml"
          title="builder: finished runs"
          href="${meta.feed ?? links.feed()}"
        />
      </head>
      <body>
        <header class="site">
          <a class="brand" href="${links.home()}">builder</a>
          <nav aria-label="site">
            <a href="${links.home()}">jobs</a>
            <a href="${links.failed()}">failed</a>
            <a href="${links.workers()}">workers</a>
            <a href="/repos">repositories</a>
            <a href="${meta.feed ?? links.feed()}">feed</a>
          </nav>
        </header>
        <main>${body}</main>
        <footer class="site">builder ${version}</footer>
        <script type="module" src="/static/browser/site.js"></script>
      </body>
    </html> `;
}
