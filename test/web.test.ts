import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, waitFor } from './harness.ts';

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const EVIL = `<script>alert("x")</script>'q'`;

describe('the public website, against real server and worker processes', () => {
  let c: Cluster;
  const get = (path: string, init?: RequestInit) => fetch(`${c.url}${path}`, init);
  const json = async (path: string) => {
    const r = await get(path, { headers: { accept: 'application/json' } });
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
    return r.json();
  };

  beforeAll(async () => {
    c = await Cluster.start();
    c.startWorker('w1', { capacity: 2 });
    await c.waitForWorkers('w1');
    await c.schedule('web-ok', 'echo "<script>alert(1)</script> rev=$REV"\n');
    await c.schedule('web-bad', 'echo about to fail\nexit 4\n');
    expect((await c.client(['execute', 'web-ok', '--param', `REV=${EVIL}`, '--follow'])).code).toBe(0);
    expect((await c.client(['execute', 'web-bad', '--follow'])).code).toBe(1);
    expect((await c.client(['execute', 'web-bad', '--follow'])).code).toBe(1);
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('lists the jobs as HTML with the security headers, and as JSON', async () => {
    const r = await get('/');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(r.headers.get('content-security-policy')).toBe(CSP);
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('referrer-policy')).toBe('same-origin');
    const body = await r.text();
    expect(body).toContain('<a href="/job/web-ok">web-ok</a>');
    expect(body).toContain('<img src="/badge/web-bad.svg"');
    // no inline script or style: only the site's own script files
    expect(body).not.toMatch(/<script(?![^>]*\ssrc="\/static\/)|style=/);
    const data = await json('/');
    expect(data).toEqual(await (await get('/api/')).json());
    const jobs = JSON.parse((await c.client(['jobs', '--json'])).stdout);
    expect(data.jobs.map((j: { job: unknown }) => j.job)).toEqual(jobs);
  });

  it('shows a run with its parameters escaped, and the JSON the CLI gets', async () => {
    const r = await get('/job/web-ok/run/1');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-security-policy')).toBe(CSP);
    const body = await r.text();
    expect(body).toContain('exited 0');
    expect(body).toContain('<code class="value">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;q&#39;</code>');
    expect(body).toContain('echo &quot;&lt;script&gt;alert(1)&lt;/script&gt; rev=$REV&quot;');
    expect(body).not.toContain('<script>alert');
    expect(body).toContain('<time datetime="');
    const data = await json('/job/web-ok/run/1');
    expect(data).toEqual(await (await get('/api/job/web-ok/run/1')).json());
    const info = JSON.parse((await c.client(['info', 'web-ok/1', '--json'])).stdout);
    expect(data.run).toEqual(info);
    expect(data.run.params).toEqual({ REV: EVIL });
    expect(data.artifacts).toEqual([]);
    expect(data.console).toBe('/job/web-ok/run/1/console.txt');
  });

  it('filters and pages the runs of a job', async () => {
    const all = await json('/job/web-bad');
    expect(all).toMatchObject({ total: 2, page: 1, pages: 1, filter: { platform: null, state: null } });
    expect(all.runs.map((r: { number: number }) => r.number)).toEqual([2, 1]);
    expect(all.job.script).toBe('echo about to fail\nexit 4\n');
    expect((await json('/job/web-bad?state=succeeded')).runs).toEqual([]);
    expect((await json('/job/web-bad?state=failed&platform=debian-12')).total).toBe(2);
    expect((await json('/job/web-bad?page=2')).runs).toEqual([]);
    const html = await (await get('/job/web-bad?state=failed')).text();
    expect(html).toMatch(/<option value="failed"\s+selected>failed<\/option>/);
    expect((await get('/job/web-bad?state=<b>')).status).toBe(400);
  });

  it('answers 404 for unknown jobs and runs', async () => {
    const page = await get('/job/nope');
    expect(page.status).toBe(404);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(CSP);
    const api = await get('/api/job/web-ok/run/9');
    expect(api.status).toBe(404);
    expect(await api.json()).toEqual({ error: 'job web-ok has no run 9' });
  });

  it('lists failed runs across jobs', async () => {
    const data = await json('/failed');
    expect(data.runs.map((r: { job: string; number: number }) => `${r.job}/${r.number}`)).toEqual([
      'web-bad/2',
      'web-bad/1',
    ]);
    const body = await (await get('/failed')).text();
    expect(body).toContain('href="/job/web-bad/run/2"');
    expect(body).toContain('exited 4');
  });

  it('shows connected workers and the runs they are running', async () => {
    await c.schedule('web-slow', 'sleep 30\n');
    expect((await c.client(['execute', 'web-slow'])).code).toBe(0);
    await waitFor(async () => (await c.run('web-slow/1')).state === 'running', 'web-slow/1 to run');
    const data = await json('/workers');
    expect(data.workers).toMatchObject([{ name: 'w1', platform: 'debian-12', capacity: 2, executor: 'host' }]);
    expect(data.running.map((r: { job: string }) => r.job)).toEqual(['web-slow']);
    const body = await (await get('/workers')).text();
    expect(body).toContain('<td>w1</td>');
    expect(body).toContain('<a href="/job/web-slow/run/1">web-slow/1</a>');
    expect(await (await get('/badge/web-slow.svg')).text()).toContain('>running</text>');
    expect((await c.client(['cancel', 'web-slow/1'])).code).toBe(0);
    await waitFor(async () => (await c.run('web-slow/1')).state === 'cancelled', 'web-slow/1 to stop');
  });

  it('serves badges with no-cache', async () => {
    const ok = await get('/badge/web-ok.svg');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
    expect(ok.headers.get('cache-control')).toBe('no-cache');
    const svg = await ok.text();
    expect(svg).toContain('>web-ok</text>');
    expect(svg).toContain('>passing</text>');
    expect(await (await get('/badge/web-bad.svg?platform=debian-12')).text()).toContain('>failing</text>');
    expect(await (await get('/badge/web-bad.svg?platform=freebsd-14')).text()).toContain('>unknown</text>');
  });

  it('publishes finished runs as Atom feeds', async () => {
    const ids = await Promise.all(['web-ok/1', 'web-bad/1', 'web-bad/2'].map(async (ref) => (await c.run(ref)).id));
    const all = await get('/feed.atom');
    expect(all.headers.get('content-type')).toBe('application/atom+xml; charset=utf-8');
    const xml = await all.text();
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="utf-8"\?>\n<feed xmlns="http:\/\/www.w3.org\/2005\/Atom">/);
    for (const id of ids) expect(xml).toContain(`<id>urn:uuid:${id}</id>`);
    expect(xml).toContain('<title>web-bad/2 on debian-12: exited 4 (failed)</title>');
    expect(xml).not.toContain('<script>');
    const one = await (await get('/job/web-bad/feed.atom')).text();
    expect(one.match(/<entry>/g)).toHaveLength(2);
    expect((await get('/job/nope/feed.atom')).status).toBe(404);
  });

  it('answers latest links and hash look-ups', async () => {
    const latest = await get('/job/web-ok/latest/dist/app.tar.gz?platform=debian-12', { redirect: 'manual' });
    expect(latest.status).toBe(404);
    expect(await latest.text()).toContain('has no artifact dist/app.tar.gz');
    expect((await get('/hash?sha256=not-a-hash')).status).toBe(400);
    expect(await (await get('/api/hash?sha256=not-a-hash')).json()).toEqual({
      error: 'not a SHA-256 (64 hex digits): not-a-hash',
    });
    expect((await json(`/hash?sha256=${'0'.repeat(64)}`)).files).toEqual([]);
  });

  it('lists real artifacts, follows latest links to them and finds them by hash', async () => {
    await c.schedule(
      'web-pkg',
      'mkdir -p "$BUILDER_OUTPUT/dist"\necho "build $BUILDER_RUN" > "$BUILDER_OUTPUT/dist/my app.txt"\n',
    );
    expect((await c.client(['execute', 'web-pkg', '--follow'])).code).toBe(0);
    const sha = createHash('sha256').update('build 1\n').digest('hex');
    await waitFor(async () => (await json('/job/web-pkg/run/1')).artifacts.length === 1, 'the artifact list');
    const data = await json('/job/web-pkg/run/1');
    expect(data.artifacts).toEqual([
      {
        path: 'dist/my app.txt',
        size: 8,
        sha256: sha,
        url: '/job/web-pkg/run/1/artifacts/dist/my%20app.txt',
        latest: '/job/web-pkg/latest/dist/my%20app.txt?platform=debian-12',
      },
    ]);
    // the job page lists the newest successful run's files by their stable links
    const job = await json('/job/web-pkg');
    expect(job.latestArtifacts).toMatchObject([
      { platform: 'debian-12', run: 1, files: [{ path: 'dist/my app.txt', latest: data.artifacts[0].latest }] },
    ]);
    expect(await (await get('/job/web-pkg')).text()).toContain(
      'href="/job/web-pkg/latest/dist/my%20app.txt?platform=debian-12"',
    );
    const page = await (await get('/job/web-pkg/run/1')).text();
    expect(page).toContain('href="/job/web-pkg/run/1/artifacts/dist/my%20app.txt"');
    expect(page).toContain(sha);
    const latest = await get('/job/web-pkg/latest/dist/my%20app.txt?platform=debian-12', { redirect: 'manual' });
    expect(latest.status).toBe(302);
    expect(latest.headers.get('location')).toBe('/job/web-pkg/run/1/artifacts/dist/my%20app.txt');
    expect(await (await get('/job/web-pkg/latest/dist/my%20app.txt')).text()).toBe('build 1\n');
    const found = await json(`/hash?sha256=${sha}`);
    expect(found.files).toMatchObject([{ job: 'web-pkg', number: 1, path: 'dist/my app.txt' }]);
  });
});
