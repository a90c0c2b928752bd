import { formatBytes, formatDuration, type RunState, type RunUsage } from '@builder/protocol';
import { escapeHtml } from './html.ts';

/** One run as the charts draw it. */
export interface ChartRun {
  number: number;
  platform: string;
  state: RunState;
  /** `exited 1`, `succeeded`…: the words the tooltip says. */
  result: string;
  durationMs: number | null;
  queueWaitMs: number | null;
  usage: RunUsage | null;
}

/** How many runs the chart (and its JSON) shows, newest last. */
export const CHART_RUNS = 500;
/** How many the front page's sparklines show. */
export const SPARK_RUNS = 30;

type Kind = 'ok' | 'fail' | 'other';

/** Colour, and a shape that says the same without colour: a bar for success, a cross on failure. */
const COLOURS: Record<Kind, string> = { ok: '#1a7f37', fail: '#c62828', other: '#6e7781' };
const WAIT_COLOUR = '#b0b8c1';

function kind(state: RunState): Kind {
  if (state === 'succeeded') return 'ok';
  if (state === 'failed' || state === 'timeout' || state === 'lost' || state === 'error') return 'fail';
  return 'other';
}

const W = 720;
const H = 220;
const PAD = { left: 56, right: 8, top: 28, bottom: 36 };

/**
 * The last runs of a job as an SVG bar chart, one `<g class="mark">` per run (oldest left): its
 * queue wait (grey) under its duration (coloured by result; failures also carry a cross, other
 * ends a circle, so colour is never the only sign), with a `<title>` tooltip naming the run, its
 * times and what it cost. Plain SVG with presentation attributes only (no style, no script), so
 * it is the same inline in a page under the site's CSP and as an image.
 */
export function renderChart(
  jobName: string,
  runs: readonly ChartRun[],
  opts: { standalone?: boolean; id?: string } = {},
): string {
  const id = opts.id ?? 'chart';
  const title = `Last ${runs.length} run${runs.length === 1 ? '' : 's'} of ${jobName}: duration and queue wait`;
  const failed = runs.filter((r) => kind(r.state) === 'fail').length;
  const longest = runs.reduce((m, r) => Math.max(m, r.durationMs ?? 0), 0);
  const desc =
    runs.length === 0
      ? 'No runs yet.'
      : `${runs.length} runs from #${runs[0]!.number} to #${runs.at(-1)!.number}; ${failed} did not succeed; the longest ran ${formatDuration(longest)}. Each bar is one run, oldest left: grey is the time it waited in the queue, on top the time it ran, green when it succeeded, red with a cross when it failed, grey with a circle otherwise.`;
  const ns = opts.standalone ? ' xmlns="http://www.w3.org/2000/svg"' : '';
  const parts: string[] = [
    `<svg${ns} class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-labelledby="${id}-title ${id}-desc">`,
    `<title id="${id}-title">${escapeHtml(title)}</title>`,
    `<desc id="${id}-desc">${escapeHtml(desc)}</desc>`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
  ];
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const base = PAD.top + plotH;
  const max = runs.reduce((m, r) => Math.max(m, (r.durationMs ?? 0) + (r.queueWaitMs ?? 0)), 0) || 1000;
  const y = (ms: number) => (ms / max) * plotH;
  // axis and its two labels
  parts.push(
    `<line x1="${PAD.left}" y1="${base}" x2="${W - PAD.right}" y2="${base}" stroke="#57606a" stroke-width="1"/>`,
    `<line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${base}" stroke="#57606a" stroke-width="1"/>`,
    `<text x="${PAD.left - 4}" y="${PAD.top + 4}" text-anchor="end" font-size="11" fill="#1b1f23">${escapeHtml(formatDuration(max))}</text>`,
    `<text x="${PAD.left - 4}" y="${base}" text-anchor="end" font-size="11" fill="#1b1f23">0</text>`,
  );
  // legend: the words for what the colours and shapes mean
  parts.push(
    `<g font-size="11" fill="#1b1f23">`,
    `<rect x="${PAD.left}" y="8" width="10" height="10" fill="${COLOURS.ok}"/><text x="${PAD.left + 14}" y="17">succeeded</text>`,
    `<rect x="${PAD.left + 90}" y="8" width="10" height="10" fill="${COLOURS.fail}"/>${cross(PAD.left + 95, 13, 4)}<text x="${PAD.left + 104}" y="17">failed</text>`,
    `<rect x="${PAD.left + 160}" y="8" width="10" height="10" fill="${COLOURS.other}"/><circle cx="${PAD.left + 165}" cy="13" r="2.5" fill="#ffffff"/><text x="${PAD.left + 174}" y="17">other</text>`,
    `<rect x="${PAD.left + 230}" y="8" width="10" height="10" fill="${WAIT_COLOUR}"/><text x="${PAD.left + 244}" y="17">queue wait</text>`,
    `</g>`,
  );
  if (runs.length === 0) {
    parts.push(
      `<text x="${PAD.left + plotW / 2}" y="${PAD.top + plotH / 2}" text-anchor="middle" font-size="13" fill="#57606a">no runs yet</text>`,
    );
  }
  const slot = plotW / Math.max(runs.length, 1);
  // thin bars for many runs, never wider than a finger for a few
  const barW = Math.min(Math.max(slot * 0.8, Math.min(slot, 1)), 28);
  runs.forEach((r, i) => {
    const k = kind(r.state);
    const x = PAD.left + i * slot + (slot - barW) / 2;
    const wait = y(r.queueWaitMs ?? 0);
    const ran = y(r.durationMs ?? 0);
    const g = [`<g class="mark mark-${k}" data-run="${r.number}">`, `<title>${escapeHtml(tooltip(r))}</title>`];
    // a transparent full-height strip: the tooltip is reachable even over a tiny bar
    g.push(
      `<rect x="${n(PAD.left + i * slot)}" y="${PAD.top}" width="${n(slot)}" height="${plotH}" fill="transparent"/>`,
    );
    if (wait > 0)
      g.push(`<rect x="${n(x)}" y="${n(base - wait)}" width="${n(barW)}" height="${n(wait)}" fill="${WAIT_COLOUR}"/>`);
    g.push(
      `<rect x="${n(x)}" y="${n(base - wait - Math.max(ran, 1))}" width="${n(barW)}" height="${n(Math.max(ran, 1))}" fill="${COLOURS[k]}"/>`,
    );
    // the shape that does not need colour, under the axis where a bar is too thin to hold it
    const cx = x + barW / 2;
    const size = Math.min(4, Math.max(slot / 2, 1.5));
    if (k === 'fail') g.push(cross(cx, base + 8, size, COLOURS.fail));
    if (k === 'other')
      g.push(
        `<circle cx="${n(cx)}" cy="${base + 8}" r="${n(size * 0.6)}" fill="none" stroke="${COLOURS.other}" stroke-width="1"/>`,
      );
    g.push('</g>');
    parts.push(g.join(''));
  });
  if (runs.length > 0) {
    parts.push(
      `<text x="${PAD.left}" y="${H - 6}" font-size="11" fill="#1b1f23">#${runs[0]!.number}</text>`,
      `<text x="${W - PAD.right}" y="${H - 6}" text-anchor="end" font-size="11" fill="#1b1f23">#${runs.at(-1)!.number}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/** A small inline chart of durations for the front page: one bar per run, coloured and shaped as above. */
export function renderSparkline(jobName: string, runs: readonly ChartRun[]): string {
  const w = 120;
  const h = 24;
  const ok = runs.filter((r) => kind(r.state) === 'ok').length;
  const label = runs.length === 0 ? `${jobName}: no runs yet` : `${jobName}: last ${runs.length} runs, ${ok} succeeded`;
  const max = runs.reduce((m, r) => Math.max(m, r.durationMs ?? 0), 0) || 1;
  const slot = Math.min(w / Math.max(runs.length, 1), 8);
  const bars = runs.map((r, i) => {
    const k = kind(r.state);
    const bh = Math.max(2, ((r.durationMs ?? 0) / max) * (h - 4));
    // failures reach below the baseline: a shape one sees without the colour
    const extra = k === 'fail' ? 3 : 0;
    return `<rect class="mark" x="${n(i * slot + slot * 0.1)}" y="${n(h - 4 - bh)}" width="${n(slot * 0.8)}" height="${n(bh + extra)}" fill="${COLOURS[k]}"><title>${escapeHtml(tooltip(r))}</title></rect>`;
  });
  return `<svg class="spark" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${escapeHtml(label)}"><title>${escapeHtml(label)}</title><line x1="0" y1="${h - 4}" x2="${w}" y2="${h - 4}" stroke="#8c959f" stroke-width="0.5"/>${bars.join('')}</svg>`;
}

function tooltip(r: ChartRun): string {
  const parts = [`#${r.number} on ${r.platform}: ${r.result}`];
  if (r.durationMs !== null) parts.push(`ran ${formatDuration(r.durationMs)}`);
  if (r.queueWaitMs !== null) parts.push(`waited ${formatDuration(r.queueWaitMs)}`);
  if (r.usage) {
    parts.push(`CPU ${formatDuration(r.usage.cpuMs)}`);
    if (r.usage.peakMemoryBytes !== null) parts.push(`peak memory ${formatBytes(r.usage.peakMemoryBytes)}`);
  }
  return parts.join(', ');
}

function cross(cx: number, cy: number, size: number, colour = '#ffffff'): string {
  const a = n(cx - size / 2);
  const b = n(cx + size / 2);
  const c = n(cy - size / 2);
  const d = n(cy + size / 2);
  return `<path d="M${a} ${c}L${b} ${d}M${b} ${c}L${a} ${d}" stroke="${colour}" stroke-width="1.5"/>`;
}

/** Two decimals at most: small files for 500 marks. */
function n(v: number): string {
  return String(Math.round(v * 100) / 100);
}
