import { describe, expect, it } from 'vitest';
import { AnsiParser, ansiToHtml, nearestXterm, spansToHtml, xtermRgb, type Span } from './ansi.ts';

const ESC = '\x1b';

function parse(...chunks: string[]): Span[] {
  const p = new AnsiParser();
  const spans = chunks.flatMap((c) => p.push(c));
  return [...spans, ...p.end()];
}

describe('AnsiParser', () => {
  it('passes plain text through as one unstyled span', () => {
    expect(parse('hello\tworld\n')).toEqual([
      { text: 'hello\tworld\n', bold: false, dim: false, italic: false, underline: false },
    ]);
  });

  it('maps the 16 colours, backgrounds, attributes and their resets', () => {
    const spans = parse(`${ESC}[1;31mA${ESC}[22;39;44mB${ESC}[92;103;3;4;2mC${ESC}[23;24;22;49mD${ESC}[0mE`);
    expect(spans.map((s) => [s.text, s.fg, s.bg, s.bold, s.dim, s.italic, s.underline])).toEqual([
      ['A', 1, undefined, true, false, false, false],
      ['B', undefined, 4, false, false, false, false],
      ['C', 10, 11, false, true, true, true],
      ['D', 10, undefined, false, false, false, false],
      ['E', undefined, undefined, false, false, false, false],
    ]);
  });

  it('treats ESC[m as a reset and keeps the style across chunks', () => {
    const spans = parse(`${ESC}[31mred `, 'still red', `${ESC}[mplain`);
    expect(spans.map((s) => [s.text, s.fg])).toEqual([
      ['red ', 1],
      ['still red', 1],
      ['plain', undefined],
    ]);
  });

  it('reads 256-colour and truecolor codes, in ; and : form', () => {
    const spans = parse(`${ESC}[38;5;196;48;5;17mA${ESC}[38;2;255;0;0mB${ESC}[38:2::0:0:255mC${ESC}[48:5:250mD`);
    expect(spans.map((s) => [s.text, s.fg, s.bg])).toEqual([
      ['AB', 196, 17], // the same colour again: one span
      ['C', 21, 17],
      ['D', 21, 250],
    ]);
  });

  it('maps truecolor to the nearest of the fixed xterm colours', () => {
    expect(nearestXterm(255, 0, 0)).toBe(196);
    expect(nearestXterm(0, 0, 0)).toBe(16);
    expect(nearestXterm(128, 128, 128)).toBe(244);
    expect(nearestXterm(95, 135, 175)).toBe(67);
    // the shortcut agrees with a search of the whole palette
    for (let i = 0; i < 500; i++) {
      const [r, g, b] = [(i * 37) % 256, (i * 91) % 256, (i * 13) % 256];
      const d = (n: number) => xtermRgb(n).reduce((acc, v, k) => acc + (v - [r, g, b][k]!) ** 2, 0);
      let best = 16;
      for (let n = 17; n < 256; n++) if (d(n) < d(best)) best = n;
      expect(d(nearestXterm(r, g, b))).toBe(d(best));
    }
  });

  it('turns OSC 8 with BEL or ST into links', () => {
    const bel = parse(`see ${ESC}]8;;https://example.org/x\x07LINK${ESC}]8;;\x07 done`);
    expect(bel.map((s) => [s.text, s.href])).toEqual([
      ['see ', undefined],
      ['LINK', 'https://example.org/x'],
      [' done', undefined],
    ]);
    const st = parse(`${ESC}]8;id=1;mailto:a@b.example${ESC}\\mail${ESC}]8;;${ESC}\\`);
    expect(st.map((s) => [s.text, s.href])).toEqual([['mail', 'mailto:a@b.example']]);
  });

  it('refuses link targets other than http, https, ftp and mailto', () => {
    for (const url of ['javascript:alert(1)', 'JavaScript:alert(1)', ' https://x', 'data:text/html,x', 'file:///etc']) {
      const spans = parse(`${ESC}]8;;${url}\x07text${ESC}]8;;\x07`);
      expect(spans).toHaveLength(1);
      expect(spans[0]!.href).toBeUndefined();
      expect(spans[0]!.text).toBe('text');
    }
  });

  it('completes sequences split between chunks, at every split point', () => {
    const input = `a${ESC}[1;38;5;208mb${ESC}]8;;https://x.example/\x1b\\c${ESC}]8;;\x07d\r\ne`;
    const whole = parse(input);
    for (let cut = 1; cut < input.length; cut++) {
      // the same text and styles, possibly in more pieces
      const merged = merge(parse(input.slice(0, cut), input.slice(cut)));
      expect(merged).toEqual(merge(whole));
    }
    expect(whole.map((s) => s.text).join('')).toBe('abcd\ne');
  });

  it('turns CR LF and a lone CR into line breaks, also across chunks', () => {
    expect(text(parse('a\r', '\nb\rc\r'))).toBe('a\nb\nc\n');
  });

  it('strips other escape and control sequences', () => {
    const input = `${ESC}[2J${ESC}[1;1H${ESC}]0;title\x07${ESC}(B${ESC}7${ESC}[?25lok\x08\x00${ESC}P1$r${ESC}\\!`;
    expect(text(parse(input))).toBe('ok!');
  });

  it('drops an overlong unterminated sequence instead of buffering it', () => {
    const p = new AnsiParser();
    p.push(`${ESC}]8;;https://x/`);
    p.push('a'.repeat(20_000));
    expect(text([...p.push('visible'), ...p.end()])).toContain('visible');
  });
});

describe('spansToHtml', () => {
  it('escapes text and uses classes only', () => {
    const out = ansiToHtml(`<script>alert("x&'y")</script>${ESC}[1;4;3;2;31;48;5;196mz${ESC}[7mi`);
    expect(out).toBe(
      '&lt;script&gt;alert(&quot;x&amp;&#39;y&quot;)&lt;/script&gt;' +
        '<span class="f1 b196 bo dm it un">z</span><span class="f196 b1 bo dm it un">i</span>',
    );
    expect(out).not.toContain('style=');
  });

  it('writes links with an escaped href, rel and target', () => {
    const out = ansiToHtml(`${ESC}]8;;https://e.example/?a=1&b="2"\x07<L>${ESC}]8;;\x07`);
    expect(out).toBe(
      '<a href="https://e.example/?a=1&amp;b=&quot;2&quot;" rel="nofollow noopener" target="_blank">&lt;L&gt;</a>',
    );
  });

  it('swaps default colours for inverse video', () => {
    expect(ansiToHtml(`${ESC}[7mx`)).toBe('<span class="fi bi">x</span>');
  });
});

function text(spans: Span[]): string {
  return spans.map((s) => s.text).join('');
}

/** Adjacent spans with the same style joined, so different chunkings compare equal. */
function merge(spans: Span[]): Span[] {
  const out: Span[] = [];
  for (const s of spans) {
    const last = out[out.length - 1];
    if (last && JSON.stringify({ ...last, text: '' }) === JSON.stringify({ ...s, text: '' })) last.text += s.text;
    else out.push({ ...s });
  }
  return out;
}
