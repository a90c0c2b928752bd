/**
 * Console text with ANSI escapes → styled spans. Pure (no Node, no DOM): the server renders the
 * initial page with it and the browser script follows live output with the same code.
 *
 * Colours are xterm-256 palette indexes (truecolor is mapped to the nearest one), so the output
 * needs only CSS classes: the site's CSP forbids inline styles.
 */

export interface Style {
  /** Palette index 0–255; undefined: the default colour. */
  fg?: number;
  bg?: number;
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
  inverse?: boolean;
}

export interface Span extends Style {
  text: string;
  /** An OSC 8 hyperlink target; only http:, https:, ftp: and mailto: ever get here. */
  href?: string;
}

const PLAIN: Style = { bold: false, dim: false, italic: false, underline: false };

/** Escape sequences longer than this are not terminal output but garbage: dropped unfinished. */
const MAX_SEQUENCE = 8192;
/** Link targets allowed: web and mail only, and nothing a browser would silently strip. */
const SAFE_URL = /^(?:https?|ftp|mailto):[^\x00-\x20\x7f]*$/i;

type Mode = 'text' | 'esc' | 'csi' | 'string' | 'string-esc' | 'intermediate';

/**
 * A streaming parser: feed decoded text chunk by chunk; an escape sequence (or a CR LF) split
 * between two chunks is held back until it is complete.
 */
export class AnsiParser {
  private style: Style = { ...PLAIN };
  private href: string | undefined;
  private mode: Mode = 'text';
  /** The sequence collected so far (without the leading ESC). */
  private seq = '';
  /** A CR at the end of the last chunk: LF may follow in the next one. */
  private cr = false;
  private out: Span[] = [];
  private text = '';
  // ESC, CR, and the other C0 controls and DEL that a terminal would not print (TAB and LF stay).
  private readonly special = /[\x00-\x08\x0b-\x1f\x7f]/g;

  push(chunk: string): Span[] {
    let i = 0;
    while (i < chunk.length) {
      if (this.mode !== 'text') {
        i = this.sequence(chunk, i);
        continue;
      }
      if (this.cr) {
        // a lone CR (progress bars) also becomes a line break: the view cannot overwrite lines
        this.cr = false;
        this.text += '\n';
        if (chunk[i] === '\n') i++;
        continue;
      }
      this.special.lastIndex = i;
      const m = this.special.exec(chunk);
      const stop = m ? m.index : chunk.length;
      this.text += chunk.slice(i, stop);
      if (!m) break;
      i = stop + 1;
      if (m[0] === '\x1b') {
        this.mode = 'esc';
        this.seq = '';
      } else if (m[0] === '\r') {
        this.cr = true;
      }
      // any other control character is dropped
    }
    return this.take();
  }

  /** End of input: an unfinished escape sequence is dropped, a trailing CR is a line break. */
  end(): Span[] {
    if (this.cr) this.text += '\n';
    this.cr = false;
    this.mode = 'text';
    this.seq = '';
    return this.take();
  }

  /** Consume escape-sequence characters from `i`; returns where text continues. */
  private sequence(chunk: string, i: number): number {
    while (i < chunk.length && this.mode !== 'text') {
      const c = chunk[i++]!;
      const code = c.charCodeAt(0);
      switch (this.mode) {
        case 'esc':
          if (c === '[') this.mode = 'csi';
          else if (c === ']' || c === 'P' || c === 'X' || c === '^' || c === '_') {
            // OSC, DCS, SOS, PM, APC: strings that run until BEL or ST
            this.mode = 'string';
            this.seq = c;
          } else if (c === '\x1b') this.seq = '';
          else if (code >= 0x20 && code <= 0x2f) this.mode = 'intermediate';
          else this.mode = 'text'; // a two-character escape (ESC 7, ESC =, …): dropped
          break;
        case 'intermediate': // ESC ( B and friends: intermediates, then one final byte
          if (code < 0x20 || code > 0x2f) this.mode = 'text';
          break;
        case 'csi':
          if (code >= 0x40 && code <= 0x7e) {
            if (c === 'm') this.sgr(this.seq);
            this.mode = 'text';
          } else if (code < 0x20 && c !== '\x1b') {
            // C0 controls inside CSI are executed by terminals; here: ignored
          } else if (c === '\x1b' || this.seq.length >= MAX_SEQUENCE) {
            this.abandon(c);
          } else this.seq += c;
          break;
        case 'string':
          if (c === '\x07') this.finishString();
          else if (c === '\x1b') this.mode = 'string-esc';
          else if (this.seq.length >= MAX_SEQUENCE) this.abandon(c);
          else this.seq += c;
          break;
        case 'string-esc':
          if (c === '\\') this.finishString();
          else {
            // ESC not followed by '\': the string was cut short; that ESC starts something new
            this.mode = 'esc';
            this.seq = '';
            i--;
          }
          break;
      }
    }
    return i;
  }

  /** Give up on an overlong or interrupted sequence; an ESC starts the next one. */
  private abandon(c: string): void {
    this.seq = '';
    this.mode = c === '\x1b' ? 'esc' : 'text';
  }

  private finishString(): void {
    const s = this.seq;
    this.mode = 'text';
    this.seq = '';
    // OSC 8 ; params ; URI — an empty URI closes the link
    if (!s.startsWith(']8;')) return;
    const semi = s.indexOf(';', 3);
    if (semi < 0) return;
    const uri = s.slice(semi + 1);
    this.setHref(uri !== '' && SAFE_URL.test(uri) ? uri : undefined);
  }

  private setHref(href: string | undefined): void {
    if (href === this.href) return;
    this.flush();
    this.href = href;
  }

  private sgr(params: string): void {
    const next: Style = { ...this.style };
    const parts = params === '' ? ['0'] : params.split(';');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (p.includes(':')) {
        // ISO 8613-6 form: 38:5:N, 38:2::R:G:B or 38:2:R:G:B
        const sub = p.split(':');
        const colour = extendedColour(sub.slice(1), true);
        if (sub[0] === '38') next.fg = colour ?? next.fg;
        else if (sub[0] === '48') next.bg = colour ?? next.bg;
        else if (sub[0] === '4') next.underline = sub[1] !== '0';
        continue;
      }
      const n = p === '' ? 0 : Number(p);
      if (n === 38 || n === 48) {
        const rest = parts.slice(i + 1);
        const colour = extendedColour(rest, false);
        i += rest[0] === '5' ? 2 : rest[0] === '2' ? 4 : 0;
        if (n === 38) next.fg = colour ?? next.fg;
        else next.bg = colour ?? next.bg;
      } else applySimple(next, n);
    }
    this.setStyle(next);
  }

  private setStyle(next: Style): void {
    const s = this.style;
    const same =
      s.fg === next.fg &&
      s.bg === next.bg &&
      s.bold === next.bold &&
      s.dim === next.dim &&
      s.italic === next.italic &&
      s.underline === next.underline &&
      !!s.inverse === !!next.inverse;
    if (same) return;
    this.flush();
    this.style = next;
  }

  private flush(): void {
    if (this.text === '') return;
    const span: Span = { text: this.text, ...this.style };
    if (span.fg === undefined) delete span.fg;
    if (span.bg === undefined) delete span.bg;
    if (!span.inverse) delete span.inverse;
    if (this.href !== undefined) span.href = this.href;
    this.out.push(span);
    this.text = '';
  }

  private take(): Span[] {
    this.flush();
    const out = this.out;
    this.out = [];
    return out;
  }
}

function applySimple(s: Style, n: number): void {
  if (n === 0) {
    s.fg = s.bg = undefined;
    s.bold = s.dim = s.italic = s.underline = false;
    s.inverse = false;
  } else if (n === 1) s.bold = true;
  else if (n === 2) s.dim = true;
  else if (n === 3) s.italic = true;
  else if (n === 4 || n === 21) s.underline = true;
  else if (n === 7) s.inverse = true;
  else if (n === 22) s.bold = s.dim = false;
  else if (n === 23) s.italic = false;
  else if (n === 24) s.underline = false;
  else if (n === 27) s.inverse = false;
  else if (n >= 30 && n <= 37) s.fg = n - 30;
  else if (n >= 90 && n <= 97) s.fg = n - 90 + 8;
  else if (n === 39) s.fg = undefined;
  else if (n >= 40 && n <= 47) s.bg = n - 40;
  else if (n >= 100 && n <= 107) s.bg = n - 100 + 8;
  else if (n === 49) s.bg = undefined;
  // blink, hidden, strike-through, fonts…: not rendered
}

/** `5;N` or `2;R;G;B` (colon form: `2::R:G:B` too) → a palette index; undefined if malformed. */
function extendedColour(p: string[], colon: boolean): number | undefined {
  const num = (s: string | undefined) => (s === undefined || !/^\d{1,3}$/.test(s) ? NaN : Number(s));
  if (p[0] === '5') {
    const n = num(p[1]);
    return n >= 0 && n <= 255 ? n : undefined;
  }
  if (p[0] === '2') {
    // the colon form may carry a colour-space id before R:G:B
    const rgb = colon && p.length >= 5 ? p.slice(2, 5) : p.slice(1, 4);
    const [r, g, b] = rgb.map(num);
    if ([r, g, b].some((v) => v === undefined || !(v >= 0 && v <= 255))) return undefined;
    return nearestXterm(r!, g!, b!);
  }
  return undefined;
}

const CUBE = [0, 95, 135, 175, 215, 255];

/** The xterm-256 palette entry for index n (0–15: a VGA-like palette, then the cube and grays). */
export function xtermRgb(n: number): [number, number, number] {
  if (n < 16) {
    if (n === 7) return [192, 192, 192];
    if (n === 8) return [128, 128, 128];
    const v = n < 8 ? 128 : 255;
    return [n & 1 ? v : 0, n & 2 ? v : 0, n & 4 ? v : 0];
  }
  if (n < 232) {
    const i = n - 16;
    return [CUBE[Math.floor(i / 36)]!, CUBE[Math.floor(i / 6) % 6]!, CUBE[i % 6]!];
  }
  const g = 8 + (n - 232) * 10;
  return [g, g, g];
}

/**
 * The nearest of the 240 fixed xterm colours (16–255) to an RGB value. The first 16 are left
 * out because themes redefine them.
 */
export function nearestXterm(r: number, g: number, b: number): number {
  const level = (v: number) => (v < 48 ? 0 : v < 115 ? 1 : Math.min(5, Math.floor((v - 35) / 40)));
  const [ri, gi, bi] = [level(r), level(g), level(b)];
  const cube = 16 + 36 * ri + 6 * gi + bi;
  const avg = Math.round((r + g + b) / 3);
  const gi2 = avg > 238 ? 23 : Math.max(0, Math.round((avg - 8) / 10));
  const gray = 232 + gi2;
  const dist = (n: number) => {
    const [x, y, z] = xtermRgb(n);
    return (x - r) ** 2 + (y - g) ** 2 + (z - b) ** 2;
  };
  return dist(gray) < dist(cube) ? gray : cube;
}

/**
 * A span's CSS classes: `fN`/`bN` palette colours, `bo` bold, `dm` dim, `it` italic, `un`
 * underline. Inverse swaps the colours; `fi`/`bi` stand for the default colours swapped.
 */
export function spanClasses(s: Style): string {
  let fg: string | undefined = s.fg === undefined ? undefined : `f${s.fg}`;
  let bg: string | undefined = s.bg === undefined ? undefined : `b${s.bg}`;
  if (s.inverse) {
    fg = s.bg === undefined ? 'fi' : `f${s.bg}`;
    bg = s.fg === undefined ? 'bi' : `b${s.fg}`;
  }
  const c: string[] = [];
  if (fg) c.push(fg);
  if (bg) c.push(bg);
  if (s.bold) c.push('bo');
  if (s.dim) c.push('dm');
  if (s.italic) c.push('it');
  if (s.underline) c.push('un');
  return c.join(' ');
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escape = (t: string) => t.replace(/[&<>"']/g, (c) => ENTITIES[c]!);

/** Spans as HTML for the server-rendered page: text and attributes escaped, classes only. */
export function spansToHtml(spans: readonly Span[]): string {
  let out = '';
  for (const s of spans) {
    const cls = spanClasses(s);
    const attr = cls ? ` class="${cls}"` : '';
    const text = escape(s.text);
    if (s.href !== undefined) {
      out += `<a href="${escape(s.href)}" rel="nofollow noopener" target="_blank"${attr}>${text}</a>`;
    } else out += cls ? `<span${attr}>${text}</span>` : text;
  }
  return out;
}

/** A whole text at once (the state starts reset and unfinished sequences are dropped). */
export function ansiToHtml(text: string): string {
  const p = new AnsiParser();
  return spansToHtml([...p.push(text), ...p.end()]);
}
