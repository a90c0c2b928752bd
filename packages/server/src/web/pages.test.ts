import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobSpecSchema, type RunResult } from '@builder/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endRun, insertRun, startQuietServer } from '../test-support/runs.ts';
import { type RunningServer } from '../server.ts';
import type { JobRow } from '../store/rows.ts';
import { SECURITY_HEADERS } from './respond.ts';

/** The website against a real in-process server whose rows (artifacts too) are written directly. */
let server: RunningServer;
let dir: string;
let now = Date.UTC(2025, 0, 1);
const SHA = 'a'.repeat(64);

function job(name: string, platforms: string[], params: Record<string, string> = {}): JobRow {
  // the schema fills in every default, as the server does for a client's spec
  const spec = JobSpecSchema.parse({ name, platforms, script: 'echo "<b>hi</b>"', schedule: null, params });
  return server.ctx.jobs.upsert(spec, null, now).job;
}

function run(j: JobRow, platform: string, result: RunResult | null, params: Record<string, string> = {}) {
  const { ctx } = server;
  const r = insertRun(ctx, j, { platform, script: j.script, params, queuedAt: (now += 1000) });
  if (result === null) return r;
  return endRun(ctx.runs, r, result, { assigned: now, started: now + 10, finished: now + 1500 });
}

const get = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);
const getJson = async (path: string) => (await get(path, { headers: { accept: 'application/json' } })).json();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'builder-web-'));
  server = await startQuietServer(dir, () => now);
  const deb = job('deb', ['debian-12', 'ubuntu-24.04']);
  const ok = run(deb, 'debian-12', { kind: 'exited', code: 0 });
  server.ctx.artifacts.record(ok.id, [
    { path: 'out/hello 1.0.deb', size: 2048, sha256: SHA },
    { path: 'README', size: 5, sha256: 'b'.repeat(64) },
  ]);
  run(deb, 'ubuntu-24.04', { kind: 'exited', code: 2 }, { REV: '<script>alert(1)</script>' });
  const many = job('many', ['debian-12']);
  for (let i = 0; i < 60; i++) run(many, 'debian-12', { kind: 'exited', code: i % 3 === 0 ? 1 : 0 });
  run(many, 'debian-12', null);
});

afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('website pages', () => {
  it('serves HTML with the security headers, and the same data as JSON', async () => {
    const r = await get('/');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) expect(r.headers.get(k)).toBe(v);
    const body = await r.text();
    expect(body).toContain('href="/job/deb"');
    expect(body).toContain('src="/badge/deb.svg"');
    // no inline style or script: only the site's own script files
    expect(body).not.toMatch(/style=|<script(?![^>]*\ssrc="\/static\/)/);
    const viaAccept = await getJson('/');
    expect(viaAccept).toEqual(await (await get('/api/')).json());
    expect(viaAccept.jobs.map((j: { job: { name: string } }) => j.job.name)).toEqual(['deb', 'many']);
    expect(viaAccept.jobs[0].latest.map((l: { platform: string }) => l.platform)).toEqual([
      'debian-12',
      'ubuntu-24.04',
    ]);
  });

  it('shows a run with its artifacts, escaped parameters and download links', async () => {
    const body = await (await get('/job/deb/run/1')).text();
    expect(body).toContain('exited 0');
    expect(body).toContain('href="/job/deb/run/1/artifacts/out/hello%201.0.deb"');
    expect(body).toContain(SHA);
    expect(body).toContain('href="/hash?sha256=' + SHA + '"');
    expect(body).toContain('echo &quot;&lt;b&gt;hi&lt;/b&gt;&quot;');
    const failed = await (await get('/job/deb/run/2')).text();
    expect(failed).toMatch(
      /<code>REV<\/code><\/th>\s*<td><code class="value">&lt;script&gt;alert\(1\)&lt;\/script&gt;<\/code>/,
    );
    expect(failed).not.toContain('<script>alert');
    const data = await getJson('/api/job/deb/run/1');
    expect(data.run).toMatchObject({ job: 'deb', number: 1, state: 'succeeded', script: 'echo "<b>hi</b>"' });
    expect(data.artifacts).toEqual([
      {
        path: 'README',
        size: 5,
        sha256: 'b'.repeat(64),
        url: '/job/deb/run/1/artifacts/README',
        latest: '/job/deb/latest/README?platform=debian-12',
      },
      {
        path: 'out/hello 1.0.deb',
        size: 2048,
        sha256: SHA,
        url: '/job/deb/run/1/artifacts/out/hello%201.0.deb',
        latest: '/job/deb/latest/out/hello%201.0.deb?platform=debian-12',
      },
    ]);
    expect(await getJson('/job/deb/run/1')).toEqual(data);
  });

  it('shows the first 1000 artifacts of a huge run and points to the JSON for all', async () => {
    const big = job('big', ['debian-12']);
    const r = run(big, 'debian-12', { kind: 'exited', code: 0 });
    const files = Array.from({ length: 1200 }, (_, i) => ({
      path: `f/${String(i).padStart(4, '0')}`,
      size: 1,
      sha256: 'd'.repeat(64),
    }));
    server.ctx.artifacts.record(r.id, files);
    const body = await (await get('/job/big/run/1')).text();
    expect(body).toContain('1200 files');
    expect(body).toContain('the first 1000 are shown, <a href="/api/job/big/run/1">all in JSON</a>');
    expect(body).toContain('/artifacts/f/0999"');
    expect(body).not.toContain('/artifacts/f/1000"');
    expect((await getJson('/api/job/big/run/1')).artifacts).toHaveLength(1200);
  });

  it('shows where an applied job is defined: a link on a known forge, else repo@commit:path, escaped', async () => {
    const definition = {
      repo: 'https://git.example.org/<o>/r.git',
      commit: 'c0ffee',
      path: 'jobs/x.yaml',
      modified: true,
    };
    const spec = JobSpecSchema.parse({
      name: 'from-file',
      platforms: ['p'],
      script: 'true',
      schedule: null,
      definition,
    });
    const j = server.ctx.jobs.upsert(spec, null, now).job;
    run(j, 'p', null);
    const text = 'https://git.example.org/&lt;o&gt;/r.git@c0ffee:jobs/x.yaml (modified)';
    expect(await (await get('/job/from-file')).text()).toContain(`<code>${text}</code>`);
    expect(await (await get('/job/from-file/run/1')).text()).toContain(`<code>${text}</code>`);
    expect((await getJson('/job/from-file')).job.definition).toEqual(definition);
    const url = 'https://github.com/o/r/blob/c0ffee/jobs/x.yaml';
    server.ctx.jobs.upsert({ ...spec, definition: { ...definition, repo: 'https://github.com/o/r', url } }, null, now);
    expect(await (await get('/job/from-file')).text()).toContain(`<a href="${url}">https://github.com/o/r@c0ffee`);
  });

  it('paginates and filters the runs of a job', async () => {
    const first = await getJson('/api/job/many');
    expect(first).toMatchObject({ page: 1, pages: 2, total: 61 });
    expect(first.runs).toHaveLength(50);
    expect(first.runs[0].number).toBe(61);
    const second = await getJson('/api/job/many?page=2');
    expect(second.runs.map((r: { number: number }) => r.number)).toEqual(Array.from({ length: 11 }, (_, i) => 11 - i));
    const html = await (await get('/job/many')).text();
    expect(html).toContain('href="/job/many?page=2"');
    const failed = await getJson('/api/job/many?state=failed');
    expect(failed.total).toBe(20);
    expect(failed.runs.every((r: { state: string }) => r.state === 'failed')).toBe(true);
    expect((await getJson('/api/job/many?platform=ubuntu-24.04')).total).toBe(0);
    expect((await get('/job/many?state=bogus')).status).toBe(400);
    expect((await get('/job/many?page=0')).status).toBe(400);
  });

  it('answers 404 for unknown jobs and runs, as a page or JSON', async () => {
    const r = await get('/job/nope');
    expect(r.status).toBe(404);
    expect(r.headers.get('content-type')).toContain('text/html');
    expect(await r.text()).toContain('no job named nope');
    const j = await get('/api/job/deb/run/99');
    expect(j.status).toBe(404);
    expect(await j.json()).toEqual({ error: 'job deb has no run 99' });
    expect((await get('/job/deb/run/abc')).status).toBe(404);
    expect((await get('/api/nothing')).status).toBe(404);
    expect((await get('/nothing-here')).status).toBe(404);
  });

  it('redirects latest links to the newest successful run, 404 when it lacks the file', async () => {
    const r = await get('/job/deb/latest/out/hello%201.0.deb', { redirect: 'manual' });
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe('/job/deb/run/1/artifacts/out/hello%201.0.deb');
    const onUbuntu = await get('/job/deb/latest/README?platform=ubuntu-24.04', { redirect: 'manual' });
    expect(onUbuntu.status).toBe(404);
    expect(await onUbuntu.text()).toContain('on platform ubuntu-24.04 has no artifact README');
    expect((await get('/job/deb/latest/a//b', { redirect: 'manual' })).status).toBe(400);
  });

  it('finds runs by file hash and refuses malformed hashes', async () => {
    const data = await getJson(`/api/hash?sha256=${SHA.toUpperCase()}`);
    expect(data.files).toMatchObject([{ job: 'deb', number: 1, path: 'out/hello 1.0.deb', platform: 'debian-12' }]);
    expect(await (await get(`/hash?sha256=${SHA}`)).text()).toContain('href="/job/deb/run/1"');
    expect((await getJson(`/api/hash?sha256=${'c'.repeat(64)}`)).files).toEqual([]);
    expect((await get('/hash?sha256=xyz')).status).toBe(400);
    expect((await get('/api/hash')).status).toBe(400);
  });

  it('lists failed runs, serves badges, feeds, the stylesheet and HEAD', async () => {
    const failed = await getJson('/failed');
    expect(failed.runs[0]).toMatchObject({ job: 'many', state: 'failed' });
    expect(failed.runs.some((r: { job: string }) => r.job === 'deb')).toBe(true);
    const badge = await get('/badge/deb.svg?platform=ubuntu-24.04');
    expect(badge.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
    expect(badge.headers.get('cache-control')).toBe('no-cache');
    expect(await badge.text()).toContain('>failing</text>');
    expect(await (await get('/badge/deb.svg?platform=debian-12')).text()).toContain('>passing</text>');
    expect((await get('/badge/nope.svg')).status).toBe(404);
    const feed = await get('/job/deb/feed.atom');
    expect(feed.headers.get('content-type')).toBe('application/atom+xml; charset=utf-8');
    const atom = await feed.text();
    expect(atom.match(/<entry>/g)).toHaveLength(2);
    expect((await get('/static/site.css')).headers.get('content-type')).toBe('text/css; charset=utf-8');
    const head = await get('/job/deb', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(0);
    expect(await head.text()).toBe('');
  });
});
