import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, waitFor } from './harness.ts';

interface Received {
  path: string;
  body: unknown;
}

/** A real HTTP listener on 127.0.0.1:0 recording every POST; `status` decides each answer. */
async function listener(status: (n: number, path: string) => number | 'hang' = () => 200) {
  const received: Received[] = [];
  const hung: ServerResponse[] = [];
  let n = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      const code = status(++n, req.url ?? '/');
      if (code === 'hang') return void hung.push(res);
      if (code >= 200 && code < 300) received.push({ path: req.url ?? '/', body: JSON.parse(text) });
      res.writeHead(code, { 'content-type': 'text/plain' }).end(code < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    get requests() {
      return n;
    },
    close: () =>
      new Promise<void>((ok) => {
        for (const r of hung) r.destroy();
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

type Hook = { event: string; job: string; run: Record<string, unknown> | null; time: string };

describe('alert hooks: webhook, Alertmanager and after-hook targets', () => {
  let c: Cluster;
  let hook: Awaited<ReturnType<typeof listener>>;
  let am: Awaited<ReturnType<typeof listener>>;
  let afterOut: string;
  const events = (job: string) => hook.received.map((r) => r.body as Hook).filter((b) => b.job === job);

  beforeAll(async () => {
    hook = await listener();
    am = await listener();
    // the after-hook needs a path before the cluster's temp dir exists: use the listener port
    const tmp = await import('node:os').then((os) => os.tmpdir());
    afterOut = join(tmp, `builder-after-${process.pid}-${Date.now()}`);
    const script = `${afterOut}.sh`;
    writeFileSync(
      script,
      `#!/bin/sh\nprintf 'EVENT=%s JOB=%s RUN=%s RESULT=%s PLATFORM=%s URL=%s\\n' "$EVENT" "$JOB" "$RUN" "$RESULT" "$PLATFORM" "$URL" >> ${afterOut}\n`,
    );
    chmodSync(script, 0o755);
    c = await Cluster.start([
      '--alert-webhook',
      `${hook.url}/hook`,
      '--alertmanager',
      am.url,
      '--alert-after',
      script,
      '--public-url',
      'https://ci.example.org/',
    ]);
    c.startWorker('w1', { capacity: 2 });
    await c.waitForWorkers('w1');
  });
  afterAll(async () => {
    await c?.stop();
    await hook?.close();
    await am?.close();
  });

  it('posts a failure webhook with the run, and nothing for a success without earlier failure', async () => {
    await c.schedule('fine', 'true\n');
    expect((await c.client(['execute', 'fine', '--follow'])).code).toBe(0);
    await c.schedule('broken', 'exit 3\n');
    expect((await c.client(['execute', 'broken', '--follow'])).code).toBe(1);
    await waitFor(() => events('broken').length > 0, 'failure webhook');
    const [e] = events('broken');
    expect(hook.received.find((r) => (r.body as Hook).job === 'broken')!.path).toBe('/hook');
    const info = await c.run('broken/1');
    expect(e).toEqual({
      event: 'failure',
      job: 'broken',
      run: {
        id: info.id,
        number: 1,
        platform: 'debian-12',
        state: 'failed',
        result: 'exited 3',
        attempt: 1,
        url: 'https://ci.example.org/job/broken/run/1',
      },
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(events('fine')).toEqual([]);
  });

  it('sends a job’s alerts to its own webhooks too, and only that job’s', async () => {
    const own = await listener();
    try {
      await c.schedule('mine', 'exit 4\n', ['--alert-webhook', `${own.url}/mine`]);
      await c.schedule('other', 'exit 5\n');
      const bad = await c.client([
        'schedule',
        'x',
        '--platform',
        'p',
        '--script',
        c.script('x.sh', 'true'),
        '--alert-webhook',
        'ftp://nope',
      ]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('http:// or https://');
      expect(JSON.parse((await c.client(['info', 'mine', '--json'])).stdout).job.alertWebhooks).toEqual([
        `${own.url}/mine`,
      ]);
      expect((await c.client(['execute', 'mine', '--follow'])).code).toBe(1);
      expect((await c.client(['execute', 'other', '--follow'])).code).toBe(1);
      await waitFor(() => own.received.length > 0 && events('other').length > 0, 'both failures delivered');
      await waitFor(() => events('mine').length > 0, 'the global webhook gets it as well');
      expect(own.received.map((r) => [r.path, (r.body as Hook).job, (r.body as Hook).event])).toEqual([
        ['/mine', 'mine', 'failure'],
      ]);
    } finally {
      await own.close();
    }
  });

  it('sends a recovery when a job succeeds after a failure, once', async () => {
    const flag = join(c.dir, 'flaky-ok');
    await c.schedule('flaky', `test -f ${flag}\n`);
    expect((await c.client(['execute', 'flaky', '--follow'])).code).toBe(1);
    writeFileSync(flag, '');
    expect((await c.client(['execute', 'flaky', '--follow'])).code).toBe(0);
    expect((await c.client(['execute', 'flaky', '--follow'])).code).toBe(0);
    await waitFor(() => events('flaky').length >= 2, 'recovery webhook');
    await new Promise((r) => setTimeout(r, 300));
    expect(events('flaky').map((e) => [e.event, e.run!.number, e.run!.state])).toEqual([
      ['failure', 1, 'failed'],
      ['recovery', 2, 'succeeded'],
    ]);
  });

  it('posts Alertmanager v2 alerts; the recovery resolves the failure alert', async () => {
    await waitFor(
      () => am.received.filter((r) => JSON.stringify(r.body).includes('"flaky"')).length >= 2,
      'alertmanager alerts',
    );
    for (const r of am.received) {
      expect(r.path).toBe('/api/v2/alerts');
      expect(Array.isArray(r.body)).toBe(true);
      for (const a of r.body as Record<string, unknown>[]) {
        expect(Object.keys(a).sort()).toEqual(
          expect.arrayContaining(['annotations', 'generatorURL', 'labels', 'startsAt']),
        );
        const labels = a.labels as Record<string, string>;
        expect(Object.keys(labels).sort()).toEqual(['alertname', 'builder_job', 'platform', 'severity']);
        for (const v of Object.values(labels)) expect(typeof v).toBe('string');
        expect(['BuilderRunFailed', 'BuilderRunLost', 'BuilderScheduleMissed']).toContain(labels.alertname);
        expect(typeof (a.annotations as Record<string, string>).summary).toBe('string');
        expect(typeof (a.annotations as Record<string, string>).description).toBe('string');
        expect(() => new URL(a.generatorURL as string)).not.toThrow();
        expect(Number.isNaN(Date.parse(a.startsAt as string))).toBe(false);
      }
    }
    const flaky = am.received
      .flatMap(
        (r) =>
          r.body as {
            labels: Record<string, string>;
            annotations: Record<string, string>;
            startsAt: string;
            endsAt?: string;
            generatorURL: string;
          }[],
      )
      .filter((a) => a.labels.builder_job === 'flaky');
    expect(flaky).toHaveLength(2);
    expect(flaky[0]!.labels).toEqual({
      alertname: 'BuilderRunFailed',
      builder_job: 'flaky',
      platform: 'debian-12',
      severity: 'critical',
    });
    // firing: ends a few re-send intervals from now unless sent again
    expect(Date.parse(flaky[0]!.endsAt!)).toBeGreaterThan(Date.parse(flaky[0]!.startsAt));
    expect(flaky[0]!.generatorURL).toBe('https://ci.example.org/job/flaky/run/1');
    expect(flaky[0]!.annotations).toMatchObject({
      run_url: 'https://ci.example.org/job/flaky/run/1',
      result: 'exited 1',
    });
    // same label set, endsAt set: resolves the firing alert
    expect(flaky[1]!.labels).toEqual(flaky[0]!.labels);
    expect(Date.parse(flaky[1]!.endsAt!)).toBeGreaterThan(0);
  });

  it('runs the after-hook with the event in its environment', async () => {
    await waitFor(() => existsSync(afterOut) && readFileSync(afterOut, 'utf8').includes('JOB=flaky'), 'after hook');
    await waitFor(() => readFileSync(afterOut, 'utf8').includes('EVENT=recovery'), 'after hook recovery');
    const lines = readFileSync(afterOut, 'utf8').trim().split('\n');
    expect(lines).toContain(
      'EVENT=failure JOB=broken RUN=1 RESULT=failed PLATFORM=debian-12 URL=https://ci.example.org/job/broken/run/1',
    );
    expect(lines).toContain(
      'EVENT=recovery JOB=flaky RUN=2 RESULT=succeeded PLATFORM=debian-12 URL=https://ci.example.org/job/flaky/run/2',
    );
  });

  it('reports a missed schedule slot', async () => {
    await c.schedule('nightly', 'true\n', ['--cron', '0 3 * * *']);
    const r = await c.client(['reschedule', 'nightly', '2020-01-01T03:00:00Z']);
    expect(r.code).toBe(0);
    await waitFor(() => events('nightly').some((e) => e.event === 'missed'), 'missed webhook');
    expect(events('nightly').find((e) => e.event === 'missed')).toMatchObject({
      event: 'missed',
      job: 'nightly',
      run: null,
      due: '2020-01-01T03:00:00.000Z',
      policy: 'once',
    });
    await waitFor(
      () =>
        am.received.some((x) =>
          (x.body as { labels: Record<string, string> }[]).some(
            (a) => a.labels.alertname === 'BuilderScheduleMissed' && a.labels.builder_job === 'nightly',
          ),
        ),
      'missed alert',
    );
  });
});

describe('alert delivery: retries, and never in the way of runs', () => {
  let c: Cluster;
  let flaky: Awaited<ReturnType<typeof listener>>;
  let hanging: Awaited<ReturnType<typeof listener>>;
  let refusedUrl: string;

  beforeAll(async () => {
    flaky = await listener((n) => (n <= 2 ? 503 : 200));
    hanging = await listener(() => 'hang');
    const dead = await listener();
    refusedUrl = dead.url;
    await dead.close(); // nothing listens there any more: connection refused
    c = await Cluster.start([
      '--alert-webhook',
      flaky.url,
      '--alert-webhook',
      hanging.url,
      '--alert-webhook',
      refusedUrl,
      '--alert-retry-base',
      '100ms',
    ]);
    c.startWorker('w1', { capacity: 2 });
    await c.waitForWorkers('w1');
  });
  afterAll(async () => {
    await c?.stop();
    await flaky?.close();
    await hanging?.close();
  });

  it('retries a webhook that fails twice, then delivers it once', async () => {
    await c.schedule('bad', 'exit 1\n');
    expect((await c.client(['execute', 'bad', '--follow'])).code).toBe(1);
    await waitFor(() => flaky.received.length === 1, 'retried delivery', 10_000);
    expect(flaky.requests).toBe(3);
    expect((flaky.received[0]!.body as Hook).event).toBe('failure');
    // the webhook may see the request before the server has logged the delivery
    await waitFor(() => /"event":"alert\.delivered"[^\n]*"attempt":3/.test(c.server!.output()), 'delivery logged');
    expect(c.server!.output().match(/"event":"alert\.retry"[^\n]*503/g)?.length).toBeGreaterThanOrEqual(2);
  });

  it('runs still finish promptly while webhooks hang or refuse connections', async () => {
    await c.schedule('quick', 'exit 2\n');
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) expect((await c.client(['execute', 'quick', '--follow'])).code).toBe(1);
    const perRun = (Date.now() - t0) / 5;
    // a run held up by the hanging hook would take its 10 s timeout; a loaded machine needs ~1 s
    expect(perRun).toBeLessThan(5000);
    const runs = JSON.parse((await c.client(['runs', 'quick', '--json'])).stdout) as { state: string }[];
    expect(runs.map((r) => r.state)).toEqual(Array(5).fill('failed'));
    expect(hanging.requests).toBeGreaterThanOrEqual(1);
    await waitFor(
      () => /"event":"alert\.retry"[^\n]*ECONNREFUSED|fetch failed/.test(c.server!.output()),
      'refused log',
    );
  });
});
