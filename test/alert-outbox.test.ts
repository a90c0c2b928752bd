import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, freePort, waitFor } from './harness.ts';

type Hook = { event: string; job: string; run: { number: number } | null };

/** A webhook receiver on `port`, recording every POST. */
async function receiver(port: number): Promise<{ got: Hook[]; close: () => Promise<void> }> {
  const got: Hook[] = [];
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      got.push(JSON.parse(text) as Hook);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((ok) => server.listen(port, '127.0.0.1', ok));
  return {
    got,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/** One series' value from /metrics; undefined when absent. */
async function metric(c: Cluster, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${c.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('the alert outbox: stored with the change, delivered after a restart', () => {
  let c: Cluster | undefined;
  let hook: Awaited<ReturnType<typeof receiver>> | undefined;
  afterEach(async () => {
    await c?.stop();
    await hook?.close();
    c = hook = undefined;
  });

  it('a webhook that is down while the server restarts gets every alert once, in order, when it is back', async () => {
    const port = await freePort();
    const target = `webhook http://127.0.0.1:${port}`;
    c = await Cluster.start([
      '--alert-webhook',
      `http://127.0.0.1:${port}/hook`,
      '--alert-retry-base',
      '100ms',
      '--alert-retry-max',
      '400ms',
    ]);
    c.startWorker('w1');
    await c.waitForWorkers('w1');
    const flag = join(c.dir, 'a-fixed');
    await c.schedule('a', `test -f ${flag}\n`);
    await c.schedule('b', 'exit 2\n');
    expect((await c.client(['execute', 'a', '--follow'])).code).toBe(1);
    expect((await c.client(['execute', 'b', '--follow'])).code).toBe(1);
    writeFileSync(flag, '');
    expect((await c.client(['execute', 'a', '--follow'])).code).toBe(0);
    expect((await c.client(['execute', 'b', '--follow'])).code).toBe(1);
    await waitFor(async () => (await metric(c!, `builder_alert_outbox_length{target="${target}"}`)) === 4, '4 waiting');
    // the oldest goes first: its second attempt failed too (the others wait behind it)
    await waitFor(() => /"event":"alert\.retry"[^\n]*"job":"a"[^\n]*"attempt":2/.test(c!.server!.output()), 'retries');

    await c.killServer('SIGKILL');
    await c.startServer();
    // read back from the data dir: nothing was lost with the process
    expect(await metric(c, `builder_alert_outbox_length{target="${target}"}`)).toBe(4);

    hook = await receiver(port);
    await waitFor(
      async () => (await metric(c!, `builder_alert_outbox_length{target="${target}"}`)) === undefined,
      'the outbox emptied',
    );
    expect(hook.got.map((e) => [e.event, e.job, e.run?.number])).toEqual([
      ['failure', 'a', 1],
      ['failure', 'b', 1],
      ['recovery', 'a', 2],
      ['failure', 'b', 2],
    ]);
    expect(await metric(c, `builder_alerts_dropped_total{target="${target}"}`)).toBeUndefined();
  });

  it('keeps at most --alert-outbox-max per target, dropping the oldest with a log line and a metric', async () => {
    const port = await freePort();
    const target = `webhook http://127.0.0.1:${port}`;
    c = await Cluster.start([
      '--alert-webhook',
      `http://127.0.0.1:${port}/hook`,
      '--alert-outbox-max',
      '2',
      '--alert-retry-base',
      '100ms',
      '--alert-retry-max',
      '200ms',
    ]);
    c.startWorker('w1');
    await c.waitForWorkers('w1');
    await c.schedule('bad', 'exit 1\n');
    for (let i = 0; i < 4; i++) expect((await c.client(['execute', 'bad', '--follow'])).code).toBe(1);
    await waitFor(
      async () => (await metric(c!, `builder_alerts_dropped_total{target="${target}"}`)) === 2,
      '2 dropped',
    );
    expect(await metric(c, `builder_alert_outbox_length{target="${target}"}`)).toBe(2);
    const dropped = c.server!.output().match(/"event":"alert\.dropped"[^\n]*/g) ?? [];
    expect(dropped).toHaveLength(2);
    expect(dropped[0]).toContain('outbox full (2 waiting)');

    hook = await receiver(port);
    await waitFor(
      async () => (await metric(c!, `builder_alert_outbox_length{target="${target}"}`)) === undefined,
      'the outbox emptied',
    );
    expect(hook.got.map((e) => e.run?.number)).toEqual([3, 4]);
  });
});
