import type { RunState } from '@builder/protocol';
import { escapeHtml } from './html.ts';

export type BadgeStatus = 'passing' | 'failing' | 'running' | 'unknown';

const COLOURS: Record<BadgeStatus, string> = {
  passing: '#2e7d32',
  failing: '#c62828',
  running: '#0b5cad',
  unknown: '#6e7781',
};

/** What a badge says about a run (see badgeRun for which run that is); no run: unknown. */
export function badgeStatus(state: RunState | undefined): BadgeStatus {
  switch (state) {
    case undefined:
    case 'queued':
    case 'cancelled':
      return 'unknown';
    case 'assigned':
    case 'running':
      return 'running';
    case 'succeeded':
      return 'passing';
    case 'failed':
    case 'timeout':
    case 'lost':
    case 'error':
      return 'failing';
    default: {
      const never: never = state;
      throw new Error(`unknown state ${String(never)}`);
    }
  }
}

/** Rough Verdana 11px advance widths: enough to size the boxes without font metrics. */
function textWidth(text: string): number {
  let w = 0;
  for (const c of text) {
    if (/[iljtfr.,:;'!|() ]/.test(c)) w += 4;
    else if (/[mwMW@%]/.test(c)) w += 10;
    else if (/[A-Z0-9_#-]/.test(c) || /[a-z]/.test(c)) w += c >= 'a' ? 6.5 : 7.5;
    else w += 8;
  }
  return Math.ceil(w);
}

/** A flat two-part status badge: `label | status`. Only presentation attributes, no style. */
export function renderBadge(label: string, status: BadgeStatus): string {
  const lw = textWidth(label) + 12;
  const sw = textWidth(status) + 12;
  const width = lw + sw;
  const l = escapeHtml(label);
  const s = escapeHtml(status);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="20" role="img" aria-label="${l}: ${s}">
<title>${l}: ${s}</title>
<rect width="${lw}" height="20" fill="#555"/>
<rect x="${lw}" width="${sw}" height="20" fill="${COLOURS[status]}"/>
<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">
<text x="${lw / 2}" y="14">${l}</text>
<text x="${lw + sw / 2}" y="14">${s}</text>
</g>
</svg>
`;
}
