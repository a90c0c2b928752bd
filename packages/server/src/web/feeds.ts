import { createHash } from 'node:crypto';
import { formatResult } from '@builder/protocol';
import type { RunRow } from '../store/rows.ts';
import { escapeHtml } from './html.ts';
import { links } from './links.ts';

export interface FeedSpec {
  /** Stable across restarts and hosts: identifies the feed, not where it is served. */
  id: string;
  title: string;
  /** Path of the feed itself and of the page it describes (relative references; RFC 4287 allows them). */
  self: string;
  alternate: string;
  /** The site's public URL (`--public-url`): links become absolute, as feed readers prefer. */
  base?: string;
  runs: readonly RunRow[];
  /** `updated` when there are no entries. */
  now: number;
}

/** A name-based (SHA-1, version 5) UUID URN, so a feed's id needs no stored state. */
export function feedUrn(name: string): string {
  const h = createHash('sha1').update(`builder-feed:${name}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `urn:uuid:${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Escaped XML text; characters XML 1.0 cannot carry at all (most C0 controls) become U+FFFD. */
export function x(text: string): string {
  // eslint-disable-next-line no-control-regex
  return escapeHtml(
    text.replace(
      /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
      '\ufffd',
    ),
  );
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Atom 1.0: one entry per finished run, its id the run's UUID. */
export function renderAtom(feed: FeedSpec): string {
  const abs = (path: string) => `${feed.base ?? ''}${path}`;
  const updated = feed.runs.reduce((t, r) => Math.max(t, r.finishedAt ?? 0), 0) || feed.now;
  const entries = feed.runs.map((r) => {
    const result = r.result ? formatResult(r.result) : r.state;
    const title = `${r.job}/${r.number} on ${r.platform}: ${result} (${r.state})`;
    const params = Object.entries(r.params)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const summary = `${title}${r.worker ? ` on worker ${r.worker}` : ''}${params ? `; parameters: ${params}` : ''}`;
    return `<entry>
<id>urn:uuid:${x(r.id)}</id>
<title>${x(title)}</title>
<updated>${iso(r.finishedAt ?? r.queuedAt)}</updated>
<link rel="alternate" type="text/html" href="${x(abs(links.run(r.job, r.number)))}"/>
<category term="${x(r.state)}"/>
<summary>${x(summary)}</summary>
</entry>
`;
  });
  return `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<id>${x(feed.id)}</id>
<title>${x(feed.title)}</title>
<updated>${iso(updated)}</updated>
<author><name>builder</name></author>
<link rel="self" type="application/atom+xml" href="${x(abs(feed.self))}"/>
<link rel="alternate" type="text/html" href="${x(abs(feed.alternate))}"/>
<generator>builder</generator>
${entries.join('')}</feed>
`;
}
