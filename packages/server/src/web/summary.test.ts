import { describe, expect, it } from 'vitest';
import { renderSummary } from './summary.ts';

const FILES = new Set(['plot.png', 'dir/a b.svg', 'notes.txt']);
const resolve = (path: string) => (FILES.has(path) ? `/job/j/run/1/artifacts/${encodeURI(path)}` : undefined);
const render = (md: string) => renderSummary(md, resolve);

describe('job summaries', () => {
  it('keeps http(s) and mailto links, with rel for the outside ones', () => {
    const { html, dropped } = render(
      '[a](https://x.org/p?q=1) [b](http://x.org) [c](mailto:me@x.org) <https://auto.org>',
    );
    expect(html.value).toContain('<a href="https://x.org/p?q=1" rel="nofollow noopener ugc">a</a>');
    expect(html.value).toContain('<a href="http://x.org" rel="nofollow noopener ugc">b</a>');
    expect(html.value).toContain('<a href="mailto:me@x.org" rel="nofollow noopener ugc">c</a>');
    expect(html.value).toContain('<a href="https://auto.org" rel="nofollow noopener ugc">https://auto.org</a>');
    expect(dropped).toEqual([]);
  });

  it('shows every other link as its text', () => {
    const { html, dropped } = render(
      [
        '[js](javascript:alert(1)) [JS](JAVASCRIPT:alert(1)) [ent](&#106;avascript:alert(1))',
        '[data](data:text/html,x) [host](//evil.org/x) [abs](/etc/passwd) [up](../x) <javascript:alert(2)>',
        '[ref][r] [missing](nope.txt)',
        '',
        '[r]: vbscript:x',
      ].join('\n'),
    );
    expect(html.value).not.toMatch(/<a /);
    // an autolink's text stays readable as text; nothing is a link or an attribute
    expect(html.value).not.toMatch(/href=|src=/);
    for (const text of ['js', 'JS', 'ent', 'data', 'host', 'abs', 'up', 'ref', 'missing'])
      expect(html.value).toContain(text);
    expect(dropped).toHaveLength(10);
  });

  it("links and shows the run's own artifacts by relative path, images only when served as images", () => {
    const { html, dropped } = render(
      '[notes](./notes.txt) ![p](plot.png) ![s](dir/a%20b.svg) ![t](notes.txt) ![x](https://x.org/i.png)',
    );
    expect(html.value).toContain('<a href="/job/j/run/1/artifacts/notes.txt">notes</a>');
    expect(html.value).toContain('<img src="/job/j/run/1/artifacts/plot.png" alt="p">');
    expect(html.value).toContain('<img src="/job/j/run/1/artifacts/dir/a%20b.svg" alt="s">');
    expect(html.value).toContain('[image: t]');
    expect(html.value).toContain('[image: x]');
    expect(html.value.match(/<img /g)).toHaveLength(2);
    expect(dropped).toEqual(['notes.txt', 'https://x.org/i.png']);
  });

  it('never passes raw HTML through, and puts its headings under the page', () => {
    const { html } = render('# Title\n\n<script>alert(1)</script>\n\n<b onclick="x()">b</b> <img src=x onerror=y>');
    expect(html.value).toContain('<h3>Title</h3>');
    expect(html.value).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html.value).toContain('&lt;b onclick=&quot;x()&quot;&gt;b&lt;/b&gt;');
    expect(html.value).not.toMatch(/<(script|b|img)[\s>]/);
  });
});
