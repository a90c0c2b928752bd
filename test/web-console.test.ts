import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Cluster, killLeftovers, readPids, waitFor } from './harness.ts';

/** Ten coloured lines, 0.2 s apart, then a line with markup in it. */
const PRINTER = `for i in 1 2 3 4 5 6 7 8 9 10; do printf '\\033[32mline %d\\033[0m\\n' "$i"; sleep 0.2; done
echo '<script>alert(1)</script> & done'
`;

describe('console.txt', () => {
  let c: Cluster;

  beforeAll(async () => {
    c = await Cluster.start();
    c.startWorker('w1');
    await c.waitForWorkers('w1');
    await c.schedule('printer', PRINTER);
    await c.schedule('quick', 'echo hello\n');
  });
  afterAll(() => c?.stop());

  const get = (path: string, init?: RequestInit) => fetch(`${c.url}${path}`, init);

  it('follows a running job until it ends, then serves the same bytes whole and from an offset', async () => {
    expect((await c.client(['execute', 'printer'])).code).toBe(0);
    // follow from the start, even before the run is assigned
    const res = await get('/job/printer/run/1/console.txt?follow=1');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox");
    const reader = res.body!.getReader();
    const chunks: Buffer[] = [];
    let stateAtFirstLine = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(Buffer.from(value));
      if (!stateAtFirstLine && Buffer.concat(chunks).includes('line 1'))
        stateAtFirstLine = (await c.run('printer/1')).state;
    }
    // the first line came while the job was still printing: streamed, not collected at the end
    expect(stateAtFirstLine).toBe('running');
    expect((await c.run('printer/1')).state).toBe('succeeded');
    const followed = Buffer.concat(chunks);
    const text = followed.toString('utf8');
    for (let i = 1; i <= 10; i++) expect(text).toContain(`\x1b[32mline ${i}\x1b[0m\n`);
    expect(text).toContain('<script>alert(1)</script> & done\n');

    const whole = await get('/job/printer/run/1/console.txt');
    const bytes = Buffer.from(await whole.arrayBuffer());
    expect(bytes.equals(followed)).toBe(true);
    expect(whole.headers.get('content-length')).toBe(String(bytes.length));

    const from = await get('/job/printer/run/1/console.txt?from=5');
    expect(Buffer.from(await from.arrayBuffer()).equals(bytes.subarray(5))).toBe(true);
    // following a finished run just sends the rest and ends
    const finished = await get(`/job/printer/run/1/console.txt?from=${bytes.length - 3}&follow=1`);
    expect(await finished.text()).toBe(bytes.subarray(-3).toString('utf8'));
    const past = await get(`/job/printer/run/1/console.txt?from=${bytes.length + 100}`);
    expect([past.status, await past.text()]).toEqual([200, '']);

    const head = await get('/job/printer/run/1/console.txt', { method: 'HEAD' });
    expect([head.status, head.headers.get('content-length'), await head.text()]).toEqual([
      200,
      String(bytes.length),
      '',
    ]);
  });

  it('renders the console on the run page escaped, coloured and paged', async () => {
    await waitFor(async () => (await c.run('printer/1')).state === 'succeeded', 'printer/1 to finish');
    const res = await get('/job/printer/run/1');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const page = await res.text();
    expect(page).toContain('<span class="f2">line 1</span>\n');
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; done\n</pre>');
    expect(page).not.toContain('<script>alert');
    expect(page).toContain('data-src="/job/printer/run/1/console.txt"');
    expect(page).toContain('data-live="0"');
    expect(page).toContain('<a href="/job/printer/run/1/console.txt">raw log</a>');
    // an offset past the start pages back to the line it falls in
    const later = await (await get('/job/printer/run/1?after=3')).text();
    expect(later).not.toContain('>line 1<');
    expect(later).toContain('earlier output');
  });

  it('resumes a follow from an offset while the run is going', async () => {
    expect((await c.client(['execute', 'printer'])).code).toBe(0);
    await waitFor(
      async () => (await (await get('/job/printer/run/2/console.txt')).text()).includes('line 3'),
      'line 3',
    );
    const early = Buffer.from(await (await get('/job/printer/run/2/console.txt')).arrayBuffer());
    const rest = Buffer.from(
      await (await get(`/job/printer/run/2/console.txt?from=${early.length}&follow=1`)).arrayBuffer(),
    );
    const whole = Buffer.from(await (await get('/job/printer/run/2/console.txt')).arrayBuffer());
    expect(Buffer.concat([early, rest]).equals(whole)).toBe(true);
    expect(whole.toString()).toContain('line 10');
  });

  it('stops streaming when the client goes away', async () => {
    expect((await c.client(['execute', 'printer'])).code).toBe(0);
    const ac = new AbortController();
    const res = await get('/job/printer/run/3/console.txt?follow=1', { signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    await expect(reader.read()).rejects.toThrow();
    // the server is still fine and the run goes on to the end
    await waitFor(async () => (await c.run('printer/3')).state === 'succeeded', 'printer/3 to finish');
  });

  it('answers 404 for runs that do not exist and 400 for a bad offset', async () => {
    expect((await c.client(['execute', 'quick', '--follow'])).code).toBe(0);
    for (const path of [
      '/job/nope/run/1/console.txt',
      '/job/quick/run/99/console.txt',
      '/job/quick/run/0/console.txt',
      '/job/quick/run/01/console.txt',
      '/job/quick/run/1.0/console.txt',
      '/job/%E0%A4%A/run/1/console.txt',
      '/job/-quick/run/1/console.txt',
    ]) {
      const res = await get(path);
      expect([path, res.status]).toEqual([path, 404]);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    // URL parsing resolves an encoded `..` before routing: nothing of the console's is reached
    expect((await get('/job/%2E%2E/run/1/console.txt')).status).toBe(404);
    expect(await (await get('/job/qu%69ck/run/1/console.txt')).text()).toBe('hello\n');
    for (const from of ['abc', '-1', '1e3', '', '0x10']) {
      const res = await get(`/job/quick/run/1/console.txt?from=${from}`);
      expect(res.status).toBe(400);
      expect(await res.text()).toContain('"from"');
    }
  });

  it('serves only the known static files, with their types', async () => {
    const js = await get('/static/browser/console.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await js.text()).toContain('../ansi.js');
    const ansi = await get('/static/ansi.js');
    expect(ansi.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const css = await get('/static/console.css');
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(await css.text()).toContain('.console .f196{');
    const etag = css.headers.get('etag')!;
    expect((await get('/static/console.css', { headers: { 'if-none-match': etag } })).status).toBe(304);
    for (const path of [
      '/static/',
      '/static/static.js',
      '/static/%2E%2E/web/static.js',
      '/static/browser/../ansi.d.ts',
    ]) {
      expect([path, (await get(path)).status]).toEqual([path, 404]);
    }
  });
});

describe('server shutdown with live console followers', () => {
  it('SIGTERM stops the server within about a second although a follow stream is open', async () => {
    const c = await Cluster.start();
    const pids = join(c.dir, 'pids');
    try {
      c.startWorker('w1');
      await c.waitForWorkers('w1');
      await c.schedule('long', `echo $$ >> ${pids}; echo start; exec sleep 1007\n`);
      await c.client(['execute', 'long']);
      await waitFor(async () => (await c.run('long/1')).state === 'running', 'the run to start');
      const res = await fetch(`${c.url}/job/long/run/1/console.txt?follow=1`);
      const reader = res.body!.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toContain('start');
      const t = Date.now();
      expect(await c.killServer('SIGTERM')).toBe(0);
      expect(Date.now() - t).toBeLessThan(5000);
      // the follower's stream ends (cut: the browser script reconnects) instead of hanging
      let outcome: string;
      do
        outcome = await reader.read().then(
          (r) => (r.done ? 'ended' : 'data'),
          () => 'cut',
        );
      while (outcome === 'data');
      expect(['ended', 'cut']).toContain(outcome);
    } finally {
      const left = readPids(pids); // before stop() removes the dir
      await c.stop();
      killLeftovers(left); // the worker was killed with its job still running
    }
  }, 60_000);
});
