/**
 * The run page in a real browser (Debian's chromium driven by playwright-core): the console
 * follows a running job without reloads, renders colours and OSC 8 links, and never runs what
 * a build printed. Skipped when /usr/bin/chromium is missing (.ci/run installs it as root).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
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
});
