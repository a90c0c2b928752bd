import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from './harness.ts';

/** The value of one series in a text exposition, e.g. `name{a="b"}`; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1).split(' ')[0]);
  }
  return undefined;
}

function hasPromtool(): boolean {
  return spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
}

describe('GET /metrics: Prometheus exposition of a real server', () => {
  let c: Cluster;
  let startedAt: number;
  beforeAll(async () => {
    startedAt = Date.now();
    c = await Cluster.start();
    c.startWorker('w1', { capacity: 2 });
    await c.waitForWorkers('w1');
    await c.schedule('good', 'echo fine > "$BUILDER_OUTPUT/f.txt"\nsleep 0.3\n');
    await c.schedule('bad', 'echo failing\nexit 3\n');
    expect((await c.client(['execute', 'good', '--follow'])).code).toBe(0);
    expect((await c.client(['execute', 'bad', '--follow'])).code).toBe(1);
    // a platform without workers: its run stays queued
    const r = await c.client([
      'schedule',
      'stuck',
      '--platform',
      'ubuntu-24.04',
      '--script',
      c.script('stuck.sh', 'true\n'),
    ]);
    expect(r.code).toBe(0);
    expect((await c.client(['execute', 'stuck'])).code).toBe(0);
  });
  afterAll(async () => {
    await c?.stop();
  });

  async function scrape(): Promise<{ text: string; type: string | null; status: number }> {
    const res = await fetch(`${c.url}/metrics`);
    return { text: await res.text(), type: res.headers.get('content-type'), status: res.status };
  }

  it('counts finished runs by job, platform and state, with durations and queue waits', async () => {
    const { text, type, status } = await scrape();
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(text, 'builder_runs_finished_total{builder_job="good",platform="debian-12",state="succeeded"}')).toBe(
      1,
    );
    expect(sample(text, 'builder_runs_finished_total{builder_job="bad",platform="debian-12",state="failed"}')).toBe(1);
    expect(
      sample(text, 'builder_runs_finished_total{builder_job="good",platform="debian-12",state="failed"}'),
    ).toBeUndefined();
    expect(sample(text, 'builder_run_duration_seconds_count{platform="debian-12"}')).toBe(2);
    // `good` sleeps 0.3 s: at least one run is over 0.25 s, and none took a minute
    expect(sample(text, 'builder_run_duration_seconds_sum{platform="debian-12"}')).toBeGreaterThan(0.25);
    expect(sample(text, 'builder_run_duration_seconds_bucket{le="60",platform="debian-12"}')).toBe(2);
    expect(sample(text, 'builder_run_queue_wait_seconds_count{platform="debian-12"}')).toBe(2);
    expect(sample(text, 'builder_run_queue_wait_seconds_bucket{le="+Inf",platform="debian-12"}')).toBe(2);
    expect(text).toContain('# TYPE builder_runs_lost_total counter');
    expect(sample(text, 'builder_artifact_transfers_total{outcome="stored"}')).toBe(1);
    expect(sample(text, 'builder_artifact_received_bytes_total')).toBe(5);
    expect(sample(text, 'builder_artifact_blobs_stored_total')).toBe(1);
  });

  it('reads queue, running runs, workers and last success at scrape time', async () => {
    const { text } = await scrape();
    expect(sample(text, 'builder_queue_length{platform="ubuntu-24.04"}')).toBe(1);
    expect(sample(text, 'builder_queue_length{platform="debian-12"}')).toBe(0);
    expect(sample(text, 'builder_runs_running{platform="debian-12"}')).toBe(0);
    expect(sample(text, 'builder_workers_connected{platform="debian-12"}')).toBe(1);
    expect(sample(text, 'builder_workers_connected{platform="ubuntu-24.04"}')).toBe(0);
    expect(sample(text, 'builder_worker_slots{platform="debian-12"}')).toBe(2);
    const last = sample(text, 'builder_job_last_success_timestamp_seconds{builder_job="good",platform="debian-12"}')!;
    expect(last).toBeGreaterThanOrEqual(startedAt / 1000 - 5);
    expect(last).toBeLessThanOrEqual(Date.now() / 1000 + 5);
    expect(text).not.toMatch(/builder_job_last_success_timestamp_seconds\{builder_job="bad"/);
    // what is failing now, per job and platform; the alert outbox is empty (no targets)
    expect(sample(text, 'builder_job_failing{builder_job="bad",platform="debian-12"}')).toBe(1);
    expect(text).not.toMatch(/builder_job_failing\{builder_job="good"/);
    expect(text).toContain('# TYPE builder_alert_outbox_length gauge');
    expect(text).toContain('# TYPE builder_alerts_dropped_total counter');
    // the data dir's room (test/disk-full.test.ts has it run out)
    expect(sample(text, 'builder_storage_refusing_writes')).toBe(0);
    expect(sample(text, 'builder_storage_free_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('has no label Prometheus attaches itself (job, instance)', async () => {
    const { text } = await scrape();
    const labels = new Set<string>();
    for (const line of text.split('\n')) {
      if (line.startsWith('#') || !line.includes('{')) continue;
      for (const m of line.slice(line.indexOf('{'), line.lastIndexOf('}')).matchAll(/[{,]([a-zA-Z_]\w*)="/g))
        labels.add(m[1]!);
    }
    expect(labels).toContain('builder_job');
    expect(labels).not.toContain('job');
    expect(labels).not.toContain('instance');
  });

  it('passes promtool check metrics', async (ctx) => {
    if (!hasPromtool()) {
      console.warn('skipping promtool check: promtool is not on PATH (Debian package prometheus)');
      ctx.skip();
    }
    const { text } = await scrape();
    const out = execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(out).toBe('');
  });

  it('has every metric debian/alerts.rules.yml alerts on', async () => {
    const { text } = await scrape();
    const rules = readFileSync(new URL('../debian/alerts.rules.yml', import.meta.url), 'utf8');
    // metric names in the expressions, label matchers left out
    const exprs = [...rules.matchAll(/^\s+expr:(.*)$/gm)].map((m) => m[1]!.replace(/\{[^}]*\}/g, ''));
    const used = new Set(exprs.flatMap((e) => e.match(/builder_\w+/g) ?? []));
    expect(used.size).toBeGreaterThanOrEqual(6);
    for (const name of used) expect(text).toContain(`# TYPE ${name} `);
  });

  it('answers HEAD without a body', async () => {
    const res = await fetch(`${c.url}/metrics`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });
});
