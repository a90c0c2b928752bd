import { createRequire } from 'node:module';
import type MarkdownIt from 'markdown-it';
import type { Token } from 'markdown-it';
import { contentTypeFor } from '../http/content.ts';
import { html, raw, type Html } from './html.ts';

/**
 * The job's `$BUILDER_SUMMARY`, rendered by markdown-it with raw HTML off (`<script>` stays text).
 * Links go out only to http(s) and mailto, or to one of the run's own artifacts (a relative path);
 * images come only from the run's artifacts (a relative path, rewritten to the artifact's URL).
 * Anything else is shown as its text: the page never loads or links what the CSP would refuse.
 */
type Parser = InstanceType<typeof MarkdownIt>;

let parser: Parser | undefined;

/** markdown-it takes ~10 MiB of memory: made the first time a page shows a summary, not at every start. */
function markdownIt(): Parser {
  if (!parser) {
    const MarkdownItClass = createRequire(import.meta.url)('markdown-it') as typeof MarkdownIt;
    parser = new MarkdownItClass({ html: false, linkify: false, typographer: false });
    // markdown-it's own check refuses javascript:, vbscript:, file: and most data:; ours is narrower
    // and runs in the rewrite below, so let every URL through to it
    parser.validateLink = () => true;
  }
  return parser;
}

const EXTERNAL = /^(https?:\/\/|mailto:)/i;
/** A scheme (`javascript:`, `data:`…) or a host (`//x`): not a path inside the run's artifacts. */
const NOT_RELATIVE = /^([a-z][a-z0-9+.-]*:|\/)/i;

/** Where a relative path in the summary leads: the artifact's URL, or undefined when there is no such file. */
export type ArtifactResolver = (path: string) => string | undefined;

export interface RenderedSummary {
  html: Html;
  /** Links and images that were shown as text (for the JSON twin and the tests). */
  dropped: string[];
}

export function renderSummary(markdown: string, artifact: ArtifactResolver): RenderedSummary {
  const env = {};
  const md = markdownIt();
  const tokens = md.parse(markdown, env);
  const dropped: string[] = [];
  for (const block of tokens) {
    if (block.children) block.children = rewriteInline(block.children, artifact, dropped);
    // the summary sits under the page's h1 and its own h2: its `#` is an h3
    if (block.type === 'heading_open' || block.type === 'heading_close') {
      block.tag = `h${Math.min(6, Number(block.tag.slice(1)) + 2)}`;
    }
  }
  return { html: raw(md.renderer.render(tokens, md.options, env)), dropped };
}

function rewriteInline(children: Token[], artifact: ArtifactResolver, dropped: string[]): Token[] {
  const out: Token[] = [];
  /** For each open link: whether it was kept (its close is kept with it). */
  const open: boolean[] = [];
  for (const t of children) {
    if (t.type === 'link_open') {
      const href = String(t.attrGet('href') ?? '');
      const target = linkTarget(href, artifact);
      open.push(target !== undefined);
      if (target === undefined) {
        dropped.push(href);
        continue;
      }
      t.attrSet('href', target);
      if (EXTERNAL.test(target)) t.attrSet('rel', 'nofollow noopener ugc');
      out.push(t);
    } else if (t.type === 'link_close') {
      if (open.pop()) out.push(t);
    } else if (t.type === 'image') {
      const src = String(t.attrGet('src') ?? '');
      const target = imageTarget(src, artifact);
      if (target === undefined) {
        dropped.push(src);
        const text = new (t.constructor as typeof Token)('text', '', 0);
        text.content = `[image: ${t.content || src}]`;
        out.push(text);
        continue;
      }
      t.attrSet('src', target);
      out.push(t);
    } else {
      out.push(t);
    }
  }
  return out;
}

function linkTarget(href: string, artifact: ArtifactResolver): string | undefined {
  if (EXTERNAL.test(href)) return href;
  return relative(href, artifact);
}

function imageTarget(src: string, artifact: ArtifactResolver): string | undefined {
  const url = relative(src, artifact);
  if (url === undefined) return undefined;
  // the artifact must be served as an image (never as text or a page)
  return contentTypeFor(pathOf(src)).startsWith('image/') ? url : undefined;
}

function relative(ref: string, artifact: ArtifactResolver): string | undefined {
  if (ref === '' || NOT_RELATIVE.test(ref) || ref.startsWith('#') || ref.startsWith('?')) return undefined;
  return artifact(pathOf(ref));
}

/** `./img/a%20b.png#x` → `img/a b.png`. */
function pathOf(ref: string): string {
  let path = ref.replace(/[?#].*$/, '').replace(/^(\.\/)+/, '');
  try {
    path = decodeURIComponent(path);
  } catch {
    // a stray % is part of the name
  }
  return path;
}

/** The summary section at the top of the run page, with a note when the worker cut it. */
export function summarySection(rendered: RenderedSummary, truncated: boolean): Html {
  return html`<section class="summary" aria-labelledby="summary-heading">
    <h2 id="summary-heading">Summary</h2>
    <div class="markdown">${rendered.html}</div>
    ${truncated ? html`<p class="muted">The summary was longer than 64 KiB: only its beginning is shown.</p>` : ''}
  </section>`;
}
