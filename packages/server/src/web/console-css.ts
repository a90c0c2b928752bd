import { xtermRgb } from './ansi.ts';

/**
 * The first 16 colours as a terminal theme draws them (readable on the console's dark
 * background); 16–255 are the fixed xterm cube and gray ramp.
 */
const THEME_16 = [
  '#484f58', '#ff7b72', '#3fb950', '#d29922', '#58a6ff', '#bc8cff', '#39c5cf', '#b1bac4',
  '#6e7681', '#ffa198', '#56d364', '#e3b341', '#79c0ff', '#d2a8ff', '#56d4dd', '#ffffff',
]; // prettier-ignore

const hex = (n: number) =>
  THEME_16[n] ??
  `#${xtermRgb(n)
    .map((v) => v.toString(16).padStart(2, '0'))
    .join('')}`;

function palette(): string {
  const rules: string[] = [];
  for (let n = 0; n < 256; n++) rules.push(`.console .f${n}{color:${hex(n)}}`, `.console .b${n}{background:${hex(n)}}`);
  return rules.join('\n');
}

/**
 * The console's stylesheet, served at /static/console.css: the classes ansi.ts writes. The
 * console is always dark, like the terminal the output was written for.
 */
export const CONSOLE_CSS = `.console-section { margin-top: 1.5rem; }
.console-nav { display: flex; flex-wrap: wrap; gap: .25rem 1rem; align-items: baseline; margin: .25rem 0 .5rem; }
.console-range { color: var(--muted, #6e7781); }
pre.console {
  --console-fg: #e6edf3; --console-bg: #0d1117;
  color: var(--console-fg); background: var(--console-bg);
  max-height: 75vh; overflow: auto; margin: 0; padding: .75rem;
  white-space: pre-wrap; overflow-wrap: anywhere; tab-size: 8;
}
pre.console a { color: inherit; text-decoration: underline; }
.console .bo { font-weight: 700; }
.console .dm { opacity: .65; }
.console .it { font-style: italic; }
.console .un { text-decoration: underline; }
.console .fi { color: var(--console-bg); }
.console .bi { background: var(--console-fg); }
.console-status { color: var(--muted, #6e7781); min-height: 1.5em; margin: .25rem 0; }
.console-status.failed { color: var(--fail, #c62828); }
${palette()}
`;
