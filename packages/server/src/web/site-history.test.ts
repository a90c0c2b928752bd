import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobSpecSchema, type RunResult } from '@builder/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endRun, insertRun, startQuietServer } from '../test-support/runs.ts';
import { type RunningServer } from '../server.ts';
import { saveRunReport } from '../store/run-reports.ts';
import type { JobRow } from '../store/rows.ts';

/**
 * What the site added for visitors, against a real in-process server whose rows are written
 * directly: the run's summary and cost, previous/next, the chart (0, 1 and 500 runs) and the
 * workers page, each as HTML and as its JSON twin.
 */
let server: RunningServer;
let dir: string;
let now = Date.UTC(2026, 0, 1);

function job(name: string, extra: Record<string, unknown> = {}): JobRow {
  const spec = JobSpecSchema.parse({ name, platforms: ['debian-12', 'arm'], script: 'true', schedule: null, ...extra });
  return server.ctx.jobs.upsert(spec, (extra.nextRunAt as number | undefined) ?? null, now).job;
}

function run(j: JobRow, platform: string, result: RunResult, ranMs = 1500) {
  const { ctx } = server;
  const r = insertRun(ctx, j, { platform, script: j.script, params: { MSG: 'two words' }, queuedAt: (now += 10_000) });
  return endRun(ctx.runs, r, result, { assigned: now + 100, started: now + 250, finished: now + 250 + ranMs });
}

const get = (path: string) => fetch(`${server.url}${path}`);
const getJson = async (path: string) => (await get(`/api${path}`)).json();
const marks = (svg: string) => (svg.match(/<g class="mark /g) ?? []).length;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'builder-site-'));
  server = await startQuietServer(dir, () => now);
  const { ctx } = server;
  job('empty');
  const one = job('one');
  run(one, 'debian-12', { kind: 'exited', code: 3 });
  const many = job('many');
  for (let i = 0; i < 520; i++) run(many, i % 2 ? 'arm' : 'debian-12', { kind: 'exited', code: i % 7 ? 0 : 1 }, i * 10);
  const rep = job('report', { schedule: '0 3 * * *', timezone: 'Europe/Berlin', nextRunAt: Date.UTC(2026, 5, 1, 1) });
  run(rep, 'debian-12', { kind: 'exited', code: 0 });
  const mid = run(rep, 'arm', { kind: 'exited', code: 0 });
  run(rep, 'debian-12', { kind: 'exited', code: 0 });
  ctx.artifacts.record(mid.id, [
    { path: 'plot.png', size: 10, sha256: 'a'.repeat(64) },
    { path: 'report.txt', size: 10, sha256: 'b'.repeat(64) },
  ]);
  saveRunReport(ctx.db, mid.id, {
    summary: {
      markdown: [
        '# Report',
        '',
        '[docs](https://example.org/docs) [file](report.txt) [bad](javascript:alert(1)) [none](missing.txt)',
        '',
        '![plot](plot.png) ![far](https://example.org/x.png) ![text](report.txt)',
        '',
        '<script>alert(1)</script>',
      ].join('\n'),
      truncated: true,
    },
    usage: { cpuMs: 1234, peakMemoryBytes: 5 * 1024 * 1024, source: 'proc' },
  });
  ctx.workers.connected(
    { name: 'old-w', platform: 'arm', labels: ['big'], capacity: 4, executor: 'chroot' },
    now - 5000,
  );
  ctx.workers.disconnected('old-w', now - 1000);
});

afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('site history and reports', () => {
  it('renders the summary safely and gives its cost, with the same in JSON', async () => {
    const data = await getJson('/job/report/run/2');
    expect(data.usage).toEqual({ cpuMs: 1234, peakMemoryBytes: 5 * 1024 * 1024, source: 'proc' });
    expect(data.summary).toMatchObject({
      truncated: true,
      dropped: ['javascript:alert(1)', 'missing.txt', 'https://example.org/x.png', 'report.txt'],
    });
    const body = await (await get('/job/report/run/2')).text();
    const summary = body.slice(body.indexOf('id="summary-heading"'), body.indexOf('id="artifacts-heading"'));
    expect(summary).toContain('<h3>Report</h3>');
    expect(summary).toContain('<a href="https://example.org/docs" rel="nofollow noopener ugc">docs</a>');
    expect(summary).toContain('<a href="/job/report/run/2/artifacts/report.txt">file</a>');
    expect(summary).toContain('<img src="/job/report/run/2/artifacts/plot.png" alt="plot">');
    expect(summary).not.toContain('javascript:');
    expect(summary).not.toContain('example.org/x.png"');
    expect(summary).toContain('[image: far]');
    expect(summary).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(summary).not.toContain('<script');
    expect(summary).toContain('only its beginning is shown');
    expect(body).toMatch(/<dd id="run-cpu" title="the job&#39;s processes sampled from \/proc">\s*1\.2s\s*<\/dd>/);
    expect(body).toMatch(/id="run-memory"[^>]*>\s*5\.0 MiB/);
    // order: summary, artifacts (with stable links), console, parameters, script, environment
    const order = [
      'summary-heading',
      'artifacts-heading',
      'console-heading',
      'parameters-heading',
      'script-heading',
      'environment-heading',
    ];
    const at = order.map((id) => body.indexOf(`id="${id}"`));
    expect(at.every((i) => i > 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(body).toContain('href="/job/report/latest/plot.png?platform=arm"');
    expect(body).toMatch(/<code>MSG<\/code><\/th>\s*<td><code class="value">two words<\/code>/);
  });

  it('links the previous and next run of the same job and platform', async () => {
    // report: #1 debian, #2 arm, #3 debian
    expect(await getJson('/job/report/run/1')).toMatchObject({
      previous: null,
      next: { number: 3, url: '/job/report/run/3' },
    });
    expect(await getJson('/job/report/run/3')).toMatchObject({ previous: { number: 1 }, next: null });
    expect(await getJson('/job/report/run/2')).toMatchObject({ previous: null, next: null });
    const body = await (await get('/job/report/run/3')).text();
    expect(body).toContain('<a rel="prev" id="run-previous" href="/job/report/run/1"');
    expect(body).not.toContain('rel="next" id="run-next"');
  });

  it('draws the chart with one mark per run for 0, 1 and 500 runs, as an image and in the page', async () => {
    for (const [name, n] of [
      ['empty', 0],
      ['one', 1],
      ['many', 500],
    ] as const) {
      const r = await get(`/job/${name}/chart.svg`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
      const svg = await r.text();
      expect(svg).toMatch(
        /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]* role="img" aria-labelledby="chart-title chart-desc">/,
      );
      expect(svg).toContain('<title id="chart-title">');
      expect(svg).toContain('<desc id="chart-desc">');
      expect(marks(svg)).toBe(n);
      expect(svg).not.toMatch(/<script|style=|NaN|Infinity/);
      const page = await (await get(`/job/${name}`)).text();
      expect(marks(page)).toBe(n);
      const data = await getJson(`/job/${name}`);
      expect(data.chart.runs).toHaveLength(n);
      expect(data.chart.svg).toBe(`/job/${name}/chart.svg`);
    }
    const one = await (await get('/job/one/chart.svg')).text();
    expect(one).toContain('<title>#1 on debian-12: exited 3, ran 1.5s, waited 250ms</title>');
    expect(one).toContain('class="mark mark-fail"');
    const many = (await getJson('/job/many')).chart.runs;
    expect(many[0].number).toBe(21);
    expect(many.at(-1).number).toBe(520);
    expect((await get('/job/nope/chart.svg')).status).toBe(404);
    // the chart's tooltips say what a run cost
    expect(await (await get('/job/report/chart.svg')).text()).toContain('CPU 1.2s, peak memory 5.0 MiB');
  });

  it('shows the job page in order: latest artifacts, chart, runs, folded definition; schedule in its time zone', async () => {
    const data = await getJson('/job/report');
    expect(data.nextRun).toEqual({ at: Date.UTC(2026, 5, 1, 1), local: '2026-06-01 03:00 Europe/Berlin' });
    expect(data.latestArtifacts).toMatchObject([
      {
        platform: 'arm',
        run: 2,
        files: [{ path: 'plot.png', latest: '/job/report/latest/plot.png?platform=arm' }, { path: 'report.txt' }],
      },
      { platform: 'debian-12', run: 3, files: [] },
    ]);
    expect(data.runs[0]).toMatchObject({ number: 3, durationMs: 1500, queueWaitMs: 250 });
    const body = await (await get('/job/report')).text();
    expect(body).toContain('<code>0 3 * * *</code> in Europe/Berlin');
    expect(body).toContain('(2026-06-01 03:00 Europe/Berlin)');
    const at = ['latest-heading', 'chart-heading', 'runs-heading'].map((id) => body.indexOf(`id="${id}"`));
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(body.indexOf('<details class="definition">')).toBeGreaterThan(at[2]!);
  });

  it('puts a sparkline per job on the front page', async () => {
    const body = await (await get('/')).text();
    expect((body.match(/<svg class="spark"/g) ?? []).length).toBe(4);
    const data = await getJson('/');
    const many = data.jobs.find((j: { job: { name: string } }) => j.job.name === 'many');
    expect(many.history).toHaveLength(30);
  });

  it('lists workers with busy/slots, and disconnected ones with since when', async () => {
    const data = await getJson('/workers');
    expect(data.disconnected).toEqual([
      {
        name: 'old-w',
        platform: 'arm',
        labels: ['big'],
        slots: 4,
        executor: 'chroot',
        connected: false,
        since: now - 1000,
      },
    ]);
    const body = await (await get('/workers')).text();
    expect(body).toContain('id="disconnected-heading"');
    expect(body).toContain('<td>old-w</td>');
    expect(body).not.toContain('capacity');
  });
});
