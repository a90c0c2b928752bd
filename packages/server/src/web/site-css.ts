/** The site's stylesheet, served at /static/site.css (the CSP forbids inline styles). */
export const SITE_CSS = `:root {
  color-scheme: light dark;
  --fg: #1b1f23; --muted: #5f6b76; --bg: #fff; --line: #d8dee4; --link: #0b5cad; --code: #f3f5f7;
  --ok: #1a7f37; --fail: #c62828; --run: #0b5cad; --queue: #8a6d00; --other: #6e7781;
}
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --muted: #8d96a0; --bg: #0d1117; --line: #30363d; --link: #58a6ff; --code: #161b22;
    --ok: #3fb950; --fail: #f85149; --run: #58a6ff; --queue: #d29922; --other: #8d96a0; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header.site { display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; align-items: baseline; padding: .6rem 1rem; border-bottom: 1px solid var(--line); }
header.site .brand { font-weight: 700; color: var(--fg); }
header.site nav { display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; }
section.summary { border: 1px solid var(--line); border-radius: 6px; padding: 0 1rem .5rem; margin: 1rem 0; }
.markdown img { max-width: 100%; height: auto; }
.markdown pre { white-space: pre-wrap; }
table.kv th[scope=row] { color: var(--fg); font-weight: 400; }
code.value { white-space: pre-wrap; overflow-wrap: anywhere; }
details.definition > summary { cursor: pointer; font-weight: 600; margin: 1.5rem 0 .5rem; }
figure.chart { margin: .5rem 0 1rem; }
figure.chart svg, img.chart { max-width: 100%; height: auto; }
.spark { vertical-align: middle; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.4rem; margin: .5rem 0 1rem; overflow-wrap: anywhere; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
a { color: var(--link); text-decoration: none; }
a:hover { text-decoration: underline; }
/* links among words are underlined: colour alone does not tell them apart (WCAG 1.4.1) */
main :is(h1, h2, h3, p, dd, li, figcaption, .platforms) a, .markdown a { text-decoration: underline; text-underline-offset: 2px; }
table { border-collapse: collapse; width: 100%; }
.scroll { overflow-x: auto; }
th, td { text-align: left; padding: .3rem .6rem .3rem 0; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
pre, code { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: var(--code); padding: .75rem; overflow-x: auto; border-radius: 4px; }
code.hash { overflow-wrap: anywhere; }
.muted, .none { color: var(--muted); }
.state { font-weight: 600; white-space: nowrap; }
.state-succeeded { color: var(--ok); }
.state-failed, .state-timeout, .state-lost, .state-error { color: var(--fail); }
.state-running, .state-assigned { color: var(--run); }
.state-queued { color: var(--queue); }
.state-cancelled { color: var(--other); }
.platforms { display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
nav.pager { display: flex; gap: 1rem; margin: 1rem 0; }
form.filter { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .5rem 0 1rem; }
footer.site { color: var(--muted); font-size: .85rem; padding: 1rem; text-align: center; }
@media (max-width: 40rem) { body { font-size: 14px; } main { padding: .5rem; } th, td { padding-right: .4rem; } }
`;
