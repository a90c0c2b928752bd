import { describe, expect, it } from 'vitest';
import { escapeHtml, html, raw } from './html.ts';
import { links } from './links.ts';

describe('html tagged template', () => {
  it('escapes every interpolation, in content and in quoted attributes', () => {
    const evil = `<script>alert("x")</script> & 'q'`;
    const out = html`<p title="${evil}">${evil}</p>`.value;
    expect(out).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;</p>',
    );
    expect(out).not.toContain('<script>');
  });

  it('passes Html through once, joins arrays and renders false/null/undefined as nothing', () => {
    const inner = html`<b>${'<i>'}</b>`;
    expect(html`${inner}`.value).toBe('<b>&lt;i&gt;</b>');
    const items = ['a<', 'b'].map((x) => html`<li>${x}</li>`);
    expect(html`${items}`.value).toBe('<li>a&lt;</li><li>b</li>');
    expect(html`[${false}${null}${undefined}${0}]`.value).toBe('[0]');
  });

  it('trusts raw() and nothing else', () => {
    expect(html`<div>${raw('<pre id="console"></pre>')}</div>`.value).toBe('<div><pre id="console"></pre></div>');
    expect(escapeHtml('a&b')).toBe('a&amp;b');
  });

  it('percent-encodes names and artifact path segments in links', () => {
    expect(links.run('a b', 3)).toBe('/job/a%20b/run/3');
    expect(links.artifact('j', 1, 'dir/x y#?.deb')).toBe('/job/j/run/1/artifacts/dir/x%20y%23%3F.deb');
    expect(links.job('j', { platform: 'p&q', page: undefined })).toBe('/job/j?platform=p%26q');
  });
});
