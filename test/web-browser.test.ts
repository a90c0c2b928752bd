/**
 * The run page in a real browser (Debian's chromium driven by playwright-core): the console
 * follows a running job without reloads, renders colours and OSC 8 links, and never runs what
 * a build printed. Skipped when /usr/bin/chromium is missing (.ci/run installs it as root).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, waitFor } from './harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const OUT = resolve(import.meta.dirname, '..', 'test-output', 'web');

/** Markup and links first (rendered by the server), then coloured lines and the same again live. */
const SCRIPT = `printf '\\033]8;;https://example.org/x\\aLINK\\033]8;;\\a\\n'
echo '<script>window.__pwned=1</script>'
for i in $(seq 1 25); do
  printf '\\033[31mred %d\\033[0m \\033[1;38;5;208morange\\033[0m\\n' "$i"
  if [ "$i" = 15 ]; then
    echo '<img src=x onerror="window.__pwned=2"><script>window.__pwned=3</script>'
    printf '\\033]8;;https://example.org/live\\033\\\\LIVELINK\\033]8;;\\033\\\\ \\033]8;;javascript:window.__pwned=4\\aJS\\033]8;;\\a\\n'
  fi
  sleep 0.3
done
head -c 300000 /dev/urandom > "$BUILDER_OUTPUT/image.bin"
echo 'built' > "$BUILDER_OUTPUT/notes.txt"
`;

/** A 1×1 PNG the job writes into its artifacts, for its summary to show. */
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

/** A job that reports in its summary: a link, an artifact's image, and things that must stay inert. */
const REPORT = `printf '%s' '${PNG}' | base64 -d > "$BUILDER_OUTPUT/plot.png"
echo report > "$BUILDER_OUTPUT/report.txt"
cat > "$BUILDER_SUMMARY" <<'MD'
# Nightly report

See [the docs](https://example.org/docs) and [the report](report.txt).

![the plot](plot.png)

![outside](https://example.org/x.png)

[click me](javascript:window.__pwned=5)

<script>window.__pwned=6</script>
<img src=x onerror="window.__pwned=7">
MD
echo done
`;

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Serious and critical accessibility problems axe-core finds on the page (WCAG 2 A/AA). */
async function axeProblems(page: Page): Promise<string[]> {
  // evaluated through the DevTools protocol, which the page's CSP does not govern
  await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const axe = (
      window as unknown as {
        axe: {
          run(o: object): Promise<{ violations: { id: string; impact: string; nodes: { target: unknown }[] }[] }>;
        };
      }
    ).axe;
    const r = await axe.run({ runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      nodes: v.nodes.map((n) => JSON.stringify(n.target)),
    }));
  });
  return found
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 5).join(' ')}`);
}

describe.skipIf(!existsSync(CHROMIUM))(`run page in chromium (skipped if ${CHROMIUM} is missing)`, () => {
  let c: Cluster;
  let browser: Browser;

  beforeAll(async () => {
    c = await Cluster.start();
    c.startWorker('w1');
    await c.waitForWorkers('w1');
    await c.schedule('colours', SCRIPT);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    mkdirSync(OUT, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await c?.stop();
  });

  it('follows the console live, with colours and links, and runs nothing the build printed', async () => {
    expect((await c.client(['execute', 'colours'])).code).toBe(0);
    const consoleUrl = `${c.url}/job/colours/run/1/console.txt`;
    await waitFor(async () => (await (await fetch(consoleUrl)).text()).includes('red 3'), 'red 3 printed');

    const page = await browser.newPage();
    const problems: string[] = [];
    // a missing favicon (or the run's JSON, until the pages exist) is a 404 in the console: fine
    page.on('console', (m) => m.type() === 'error' && !m.text().includes('404') && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(String(e)));
    // the first follow request fails: the script must retry from where it was
    let follows = 0;
    await page.route(/console\.txt\?from=\d+&follow=1$/, (route) =>
      follows++ === 0 ? route.abort() : route.continue(),
    );
    await page.goto(`${c.url}/job/colours/run/1`);
    const pre = page.locator('#console');
    expect(await pre.getAttribute('data-live')).toBe('1');
    const linesAtLoad = ((await pre.textContent()) ?? '').split('\n').length;

    // new lines arrive without a reload
    await page.waitForFunction(() => document.getElementById('console')?.textContent?.includes('red 20'));
    expect(((await pre.textContent()) ?? '').split('\n').length).toBeGreaterThan(linesAtLoad + 10);
    const red = pre.locator('span.f1').last();
    expect(await red.evaluate((el) => getComputedStyle(el).color)).toBe('rgb(255, 123, 114)');
    const orange = pre.locator('span.f208.bo').last();
    expect(await orange.evaluate((el) => getComputedStyle(el).fontWeight)).toBe('700');

    // links from the server-rendered part and from the live part
    for (const [text, href] of [
      ['LINK', 'https://example.org/x'],
      ['LIVELINK', 'https://example.org/live'],
    ] as const) {
      const a = pre.locator('a', { hasText: new RegExp(`^${text}$`) });
      expect(await a.getAttribute('href')).toBe(href);
      expect(await a.getAttribute('rel')).toBe('nofollow noopener');
    }
    expect(await pre.locator('a', { hasText: 'JS' }).count()).toBe(0);
    expect(await pre.textContent()).toContain('<script>window.__pwned=1</script>');
    expect(await pre.textContent()).toContain('<img src=x onerror="window.__pwned=2"><script>');
    expect(await pre.locator('script, img').count()).toBe(0);

    await page.waitForFunction(() => document.getElementById('console-status')?.textContent?.startsWith('finished'));
    expect(await pre.textContent()).toContain('red 25 orange\n');
    expect(await page.locator('#console-status').textContent()).toBe('finished: succeeded (exited 0)');
    expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
    // the CSP (no inline script or style) was never violated
    expect(problems.filter((p) => !p.includes('ERR_FAILED'))).toEqual([]);
    expect(follows).toBeGreaterThanOrEqual(2);
    expect(await page.locator('#run-result').textContent()).toContain('succeeded');

    // after a reload the artifacts are listed; a click downloads one with the SHA-256 the page shows
    await page.unroute(/console\.txt/);
    await page.reload();
    const files = (await (await fetch(`${c.url}/api/job/colours/run/1`)).json()) as {
      artifacts: { path: string; sha256: string; url: string }[];
    };
    const image = files.artifacts.find((f) => f.path === 'image.bin')!;
    expect(await page.textContent('body')).toContain(image.sha256);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a:text-is("image.bin")')]);
    const saved = await download.path();
    expect(createHash('sha256').update(readFileSync(saved)).digest('hex')).toBe(image.sha256);
    await page.screenshot({ path: resolve(OUT, 'run-page.png'), fullPage: true });
    await page.close();
  });

  it('shows the summary, artifacts before the console, previous/next, relative times and the chart, accessibly', async () => {
    await c.schedule('report', REPORT);
    for (let i = 0; i < 2; i++) expect((await c.client(['execute', 'report', '--follow'])).code).toBe(0);
    const context = await browser.newContext();
    // the CSP's own reports: any violation (an inline script, an outside image) is a failure
    await context.addInitScript(() => {
      const w = window as unknown as { __csp: string[] };
      w.__csp = [];
      document.addEventListener('securitypolicyviolation', (e) =>
        w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`),
      );
    });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(String(e)));
    const outside: string[] = [];
    page.on('request', (r) => !r.url().startsWith(c.url) && outside.push(r.url()));

    await page.goto(`${c.url}/job/report/run/2`);
    const summary = page.locator('section.summary');
    expect(await summary.locator('h3').textContent()).toBe('Nightly report');
    expect(await summary.locator('a', { hasText: 'the docs' }).getAttribute('href')).toBe('https://example.org/docs');
    expect(await summary.locator('a', { hasText: 'the report' }).getAttribute('href')).toBe(
      '/job/report/run/2/artifacts/report.txt',
    );
    const img = summary.locator('img');
    expect(await img.count()).toBe(1);
    expect(await img.getAttribute('src')).toBe('/job/report/run/2/artifacts/plot.png');
    await page.waitForFunction(() => (document.querySelector('section.summary img') as HTMLImageElement)?.complete);
    expect(await img.evaluate((el: HTMLImageElement) => el.naturalWidth)).toBe(1);
    // inert: no script element, no javascript: link, the outside image not loaded
    expect(await summary.locator('script').count()).toBe(0);
    expect(await summary.locator('a[href^="javascript"]').count()).toBe(0);
    expect(await summary.textContent()).toContain('click me');
    expect(await summary.textContent()).toContain('<script>window.__pwned=6</script>');
    expect(await summary.textContent()).toContain('[image: outside]');
    expect(outside).toEqual([]);
    await summary.locator('text=click me').click();
    expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp)).toEqual([]);

    // artifacts (with their stable links) above the console
    const artifactsY = (await page.locator('#artifacts-heading').boundingBox())!.y;
    expect(artifactsY).toBeLessThan((await page.locator('#console-heading').boundingBox())!.y);
    expect(await page.locator('a.latest').first().getAttribute('href')).toMatch(
      /^\/job\/report\/latest\/plot\.png\?platform=/,
    );
    // previous / next of the same job and platform
    expect(await page.locator('a[rel=prev]').getAttribute('href')).toBe('/job/report/run/1');
    expect(await page.locator('a[rel=next]').count()).toBe(0);
    // relative times by the site's script, the absolute time on hover
    const queued = page.locator('time[data-rel]').first();
    await page.waitForFunction(() => /ago|just now/.test(document.querySelector('time[data-rel]')?.textContent ?? ''));
    expect(await queued.getAttribute('title')).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    expect(await page.locator('#run-cpu').count()).toBe(1);
    expect(await axeProblems(page)).toEqual([]);
    await shots(page, 'run-summary');

    // the job page: its chart, one mark per run, and the runs' durations
    await page.goto(`${c.url}/job/report`);
    expect(await page.locator('figure.chart svg[role=img] g.mark').count()).toBe(2);
    expect(await page.locator('figure.chart svg title').first().textContent()).toContain('Last 2 runs of report');
    expect(await page.locator('#latest-heading').boundingBox()).not.toBeNull();
    expect(await axeProblems(page)).toEqual([]);
    await shots(page, 'job');

    for (const [path, name] of [
      ['/', 'jobs'],
      ['/workers', 'workers'],
      ['/job/colours/run/1', 'run-console'],
    ] as const) {
      await page.goto(`${c.url}${path}`);
      expect(await axeProblems(page), path).toEqual([]);
      await shots(page, name);
    }
    expect(await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp)).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  });
});

/** Full-page screenshots at a desktop and a phone width (axe-checked there too), under test-output/web/. */
async function shots(page: Page, name: string): Promise<void> {
  for (const [width, height, label] of [
    [1280, 800, 'desktop'],
    [390, 844, 'phone'],
  ] as const) {
    await page.setViewportSize({ width, height });
    // a phone's narrow tables scroll: they must still be reachable and readable
    if (label === 'phone') expect(await axeProblems(page), `${name} on a phone`).toEqual([]);
    await page.screenshot({ path: resolve(OUT, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}
