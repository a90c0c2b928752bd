import { formatBytes, isTerminal } from '@builder/protocol';
import type { SiteDeps } from './deps.ts';
import type { RunRow } from '../store/rows.ts';
import { AnsiParser, spansToHtml } from './ansi.ts';
import { html, raw } from './html.ts';
import { links } from './links.ts';

/** How much of the log one page shows; only this much is ever read from disk. */
export const CONSOLE_WINDOW = 256 * 1024;
const NL = 0x0a;
const OFFSET = /^\d{1,15}$/;

export interface ConsoleWindow {
  start: number;
  end: number;
  total: number;
  /** The window was asked to reach the end of the log (and may stop short of a partial line). */
  atEnd: boolean;
  bytes: Buffer;
}

/**
 * The byte range a page shows: `before=B` ends at B, `after=A` starts at A, otherwise the tail.
 * Cuts fall on line boundaries, so every window starts with a whole line and paging back and
 * forth meets the same cuts. A window that ends at the end of a running log stops after its last
 * whole line: the browser fetches the partial one live.
 */
export function consoleWindow(ctx: SiteDeps, run: RunRow, query: URLSearchParams): ConsoleWindow {
  const total = ctx.logs.size(run.id);
  const before = offsetParam(query, 'before');
  const after = before === undefined ? offsetParam(query, 'after') : undefined;
  let start: number;
  let end: number;
  if (after !== undefined) {
    start = Math.min(after, total);
    end = Math.min(total, start + CONSOLE_WINDOW);
  } else {
    end = Math.min(before ?? total, total);
    start = Math.max(0, end - CONSOLE_WINDOW);
  }
  // one byte more in front, to see whether `start` already begins a line
  const lead = start > 0 ? 1 : 0;
  const buf = ctx.logs.read(run.id, start - lead, end - start + lead);
  const atEnd = end === total;
  end = start - lead + buf.length; // the file may be shorter than its recorded size
  let from = lead;
  if (lead && buf[0] !== NL) {
    const nl = buf.indexOf(NL, lead);
    from = nl >= 0 ? nl + 1 : charStart(buf, lead);
  }
  let to = buf.length;
  if (end < total || !isTerminal(run.state)) {
    const nl = buf.lastIndexOf(NL);
    to = nl >= from ? nl + 1 : charEnd(buf, from);
  }
  return { start: start - lead + from, end: start - lead + to, total, atEnd, bytes: buf.subarray(from, to) };
}

/** The run page's console section as safe HTML: the tail of the log, paging back, live updates. */
export function renderConsoleSection(ctx: SiteDeps, run: RunRow, query: URLSearchParams): string {
  const w = consoleWindow(ctx, run, query);
  const live = !isTerminal(run.state) && w.atEnd;
  const parser = new AnsiParser();
  const body = spansToHtml([...parser.push(w.bytes.toString('utf8')), ...parser.end()]);
  const page = links.run(run.job, run.number);
  const nav = [
    w.start > 0 && html`<a href="${`${page}?before=${w.start}#console`}" rel="nofollow">earlier output</a>`,
    !w.atEnd &&
      html`<a href="${`${page}?after=${w.end}#console`}" rel="nofollow">later output</a>
        <a href="${`${page}#console`}">latest</a>`,
    html`<a href="${links.console(run.job, run.number)}">raw log</a>`,
  ];
  const range = w.total === 0 ? 'no output yet' : `bytes ${w.start}–${w.end} of ${w.total} (${formatBytes(w.total)})`;
  return html`<section class="console-section" aria-labelledby="console-heading">
    <link rel="stylesheet" href="/static/console.css" />
    <h2 id="console-heading">Console</h2>
    <nav class="console-nav"><span class="console-range">${range}</span> ${nav.map((a) => a && html`${a} `)}</nav>
    <pre
      id="console"
      class="console"
      tabindex="0"
      data-src="${links.console(run.job, run.number)}"
      data-api="${`/api${page}`}"
      data-offset="${w.end}"
      data-live="${live ? '1' : '0'}"
    >
${raw(body)}</pre>
    <p id="console-status" class="console-status" aria-live="polite">
      ${live ? 'running: new output appears as it is printed' : ''}
    </p>
    <script type="module" src="${SCRIPT}"></script>
  </section> `.value;
}

/** The browser side (web/browser/console.ts), built into dist/static with its imports beside it. */
export const SCRIPT = '/static/browser/console.js';

function offsetParam(query: URLSearchParams, name: string): number | undefined {
  const v = query.get(name);
  return v !== null && OFFSET.test(v) ? Number(v) : undefined;
}

/** The first UTF-8 character boundary at or after i (when no line break is near). */
function charStart(buf: Buffer, i: number): number {
  while (i < buf.length && (buf[i]! & 0xc0) === 0x80) i++;
  return i;
}

/** The end of the last whole UTF-8 character in buf (from `min` on). */
function charEnd(buf: Buffer, min: number): number {
  let i = buf.length;
  // step back over continuation bytes to the lead byte of the last character
  let j = i - 1;
  while (j >= min && (buf[j]! & 0xc0) === 0x80) j--;
  if (j < min) return i;
  const lead = buf[j]!;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  if (i - j < need) i = j;
  return i;
}
