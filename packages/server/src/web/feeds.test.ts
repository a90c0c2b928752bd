import { describe, expect, it } from 'vitest';
import type { RunRow } from '../store/rows.ts';
import { feedUrn, renderAtom, x } from './feeds.ts';

const run = (over: Partial<RunRow>): RunRow =>
  ({
    id: '3c1f0b8e-0000-4000-8000-000000000001',
    job: 'nightly',
    number: 7,
    platform: 'debian-12',
    state: 'failed',
    params: { REV: '<script>"x"</script>' },
    worker: 'w1',
    queuedAt: Date.UTC(2025, 0, 1, 3, 0, 0),
    finishedAt: Date.UTC(2025, 0, 1, 3, 0, 5),
    result: { kind: 'exited', code: 3 },
    ...over,
  }) as RunRow;

/** The elements of the document, in order, as a tiny well-formedness check: every tag closes. */
function tags(xml: string): string[] {
  const stack: string[] = [];
  const seen: string[] = [];
  const body = xml.replace(/^<\?xml[^>]*\?>\s*/, '');
  for (const m of body.matchAll(/<(\/?)([a-z]+)((?:\s+[a-z:]+="[^"<]*")*)\s*(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (close) expect(stack.pop()).toBe(name);
    else {
      seen.push(name!);
      if (!self) stack.push(name!);
    }
  }
  expect(stack).toEqual([]);
  // nothing but tags and escaped text: no stray '<'
  expect(body.replace(/<[^>]+>/g, '')).not.toMatch(/[<>]/);
  return seen;
}

describe('Atom feed', () => {
  it('makes its links absolute with the public URL', () => {
    const xml = renderAtom({
      id: feedUrn('all'),
      title: 't',
      self: '/feed.atom',
      alternate: '/',
      base: 'https://ci.example.org',
      runs: [run({})],
      now: 0,
    });
    expect(xml).toContain('href="https://ci.example.org/job/nightly/run/7"');
    expect(xml).toContain('rel="self" type="application/atom+xml" href="https://ci.example.org/feed.atom"');
  });

  it('is well-formed Atom with one entry per run, ids as urn:uuid', () => {
    const xml = renderAtom({
      id: feedUrn('all'),
      title: 'builder: finished runs',
      self: '/feed.atom',
      alternate: '/',
      runs: [
        run({}),
        run({
          id: '3c1f0b8e-0000-4000-8000-000000000002',
          number: 8,
          state: 'succeeded',
          result: { kind: 'exited', code: 0 },
        }),
      ],
      now: 0,
    });
    expect(xml.startsWith('<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">')).toBe(
      true,
    );
    const seen = tags(xml);
    expect(seen.filter((t) => t === 'entry')).toHaveLength(2);
    expect(seen).toEqual(expect.arrayContaining(['id', 'title', 'updated', 'author', 'link']));
    expect(xml).toMatch(
      /<feed[^]*?<id>urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}<\/id>/,
    );
    expect(xml).toContain('<id>urn:uuid:3c1f0b8e-0000-4000-8000-000000000001</id>');
    expect(xml).toContain('<title>nightly/7 on debian-12: exited 3 (failed)</title>');
    expect(xml).toContain('<updated>2025-01-01T03:00:05.000Z</updated>');
    expect(xml).toContain('href="/job/nightly/run/7"');
    expect(xml).toContain('REV=&lt;script&gt;&quot;x&quot;&lt;/script&gt;');
    expect(xml).not.toContain('<script>');
  });

  it('has a stable id per feed and a valid document without entries', () => {
    expect(feedUrn('job:a')).toBe(feedUrn('job:a'));
    expect(feedUrn('job:a')).not.toBe(feedUrn('job:b'));
    const xml = renderAtom({ id: feedUrn('x'), title: 't', self: '/feed.atom', alternate: '/', runs: [], now: 0 });
    expect(tags(xml)).not.toContain('entry');
    expect(xml).toContain('<updated>1970-01-01T00:00:00.000Z</updated>');
  });

  it('replaces characters XML cannot carry', () => {
    expect(x('a\u0001b\u001b[31m<')).toBe('a\ufffdb\ufffd[31m&lt;');
    expect(x('tab\tnl\n')).toBe('tab\tnl\n');
  });
});
