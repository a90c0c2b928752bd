import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, freePort, waitFor } from './harness.ts';

const ALERTMANAGER = '/usr/bin/prometheus-alertmanager';
const RESOLVE_TIMEOUT_MS = 3000;

interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  updatedAt: string;
  generatorURL: string;
  status: { state: string };
}

interface Notification {
  status: 'firing' | 'resolved';
  alerts: { status: string; labels: Record<string, string>; startsAt: string; endsAt: string }[];
}

describe.skipIf(!existsSync(ALERTMANAGER))(
  'Alertmanager (Debian prometheus-alertmanager) keeps a failing job firing',
  () => {
    let dir: string;
    let am: ChildProcess | undefined;
    let amExited: Promise<unknown>;
    let amOutput = '';
    let amUrl: string;
    let sink: Server;
    const notifications: Notification[] = [];
    let c: Cluster;

    const active = async (job: string): Promise<AmAlert | undefined> => {
      const res = await fetch(`${amUrl}/api/v2/alerts?filter=builder_job%3D%22${job}%22`);
      expect(res.status).toBe(200);
      const all = (await res.json()) as AmAlert[];
      expect(all.length).toBeLessThanOrEqual(1);
      return all[0];
    };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'builder-am-'));
      // Alertmanager's own notifications land here, as an operator's receiver would get them
      sink = createServer((req, res) => {
        let text = '';
        req.on('data', (d) => (text += d));
        req.on('end', () => {
          notifications.push(JSON.parse(text) as Notification);
          res.writeHead(200).end();
        });
      });
      await new Promise<void>((ok) => sink.listen(0, '127.0.0.1', ok));
      const sinkPort = (sink.address() as AddressInfo).port;
      writeFileSync(
        join(dir, 'alertmanager.yml'),
        `global:
  resolve_timeout: ${RESOLVE_TIMEOUT_MS / 1000}s
route:
  receiver: sink
  group_by: [alertname, builder_job, platform]
  group_wait: 100ms
  group_interval: 300ms
  repeat_interval: 1h
receivers:
  - name: sink
    webhook_configs:
      - url: http://127.0.0.1:${sinkPort}/notify
        send_resolved: true
`,
      );
      const port = await freePort();
      amUrl = `http://127.0.0.1:${port}`;
      am = spawn(
        ALERTMANAGER,
        [
          `--config.file=${join(dir, 'alertmanager.yml')}`,
          `--storage.path=${join(dir, 'am-data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--cluster.listen-address=',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      am.stdout!.on('data', (d) => (amOutput += d));
      am.stderr!.on('data', (d) => (amOutput += d));
      amExited = new Promise((ok) => am!.on('exit', ok));
      await waitFor(async () => {
        if (am!.exitCode !== null) throw new Error(`alertmanager exited:\n${amOutput}`);
        return fetch(`${amUrl}/-/ready`).then(
          (r) => r.ok,
          () => false,
        );
      }, 'alertmanager ready');

      c = await Cluster.start([
        '--alertmanager',
        amUrl,
        // endsAt is 4 re-sends ahead: 4 s, more than a restart takes
        '--alertmanager-resend',
        '1s',
        '--public-url',
        'https://ci.example.org',
      ]);
      c.startWorker('w1');
      await c.waitForWorkers('w1');
    });

    afterAll(async () => {
      await c?.stop();
      if (am && am.exitCode === null) {
        am.kill('SIGKILL');
        await amExited;
      }
      await new Promise<void>((ok) => (sink ? sink.close(() => ok()) : ok()));
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('stays firing past resolve_timeout and across a server restart, then resolves when a run succeeds', async () => {
      const flag = join(c.dir, 'nightly-fixed');
      await c.schedule('nightly', `test -f ${flag}\n`);
      expect((await c.client(['execute', 'nightly', '--follow'])).code).toBe(1);

      await waitFor(async () => (await active('nightly')) !== undefined, 'the failure in Alertmanager');
      const first = (await active('nightly'))!;
      expect(first.labels).toEqual({
        alertname: 'BuilderRunFailed',
        builder_job: 'nightly',
        platform: 'debian-12',
        severity: 'critical',
      });
      expect(first.annotations).toMatchObject({
        run_url: 'https://ci.example.org/job/nightly/run/1',
        result: 'exited 1',
      });
      expect(first.generatorURL).toBe('https://ci.example.org/job/nightly/run/1');
      expect(first.status.state).toBe('active');
      const startsAt = Date.parse(first.startsAt);

      // an alert posted once would be resolved by Alertmanager after resolve_timeout (or its endsAt);
      // re-sent, it is still active, updated more than resolve_timeout after it started
      await waitFor(
        async () => {
          const a = await active('nightly');
          if (!a) throw new Error('the failing job’s alert was resolved while it still fails');
          return Date.parse(a.updatedAt) > startsAt + RESOLVE_TIMEOUT_MS + 1000;
        },
        'a re-send after resolve_timeout',
        30_000,
      );
      expect(notifications.flatMap((n) => n.alerts.map((a) => a.status))).not.toContain('resolved');

      // a crash: the new process knows from the database what is firing and keeps sending it
      await c.killServer('SIGKILL');
      const restartedAt = Date.now();
      await c.startServer();
      await waitFor(
        async () => {
          const a = await active('nightly');
          if (!a) throw new Error('the alert was resolved across the restart');
          expect(Date.parse(a.startsAt)).toBe(startsAt);
          return Date.parse(a.updatedAt) > restartedAt + RESOLVE_TIMEOUT_MS + 1000;
        },
        'the restarted server re-sending it past resolve_timeout',
        30_000,
      );
      expect(notifications.flatMap((n) => n.alerts.map((a) => a.status))).not.toContain('resolved');
      await c.waitForWorkers('w1');

      // a second failure while firing changes nothing but the latest run
      expect((await c.client(['execute', 'nightly', '--follow'])).code).toBe(1);
      await waitFor(
        async () => (await active('nightly'))?.annotations.run_url === 'https://ci.example.org/job/nightly/run/2',
        'the alert pointing at the latest failed run',
      );
      expect(Date.parse((await active('nightly'))!.startsAt)).toBe(startsAt);

      writeFileSync(flag, '');
      expect((await c.client(['execute', 'nightly', '--follow'])).code).toBe(0);
      const succeededBy = Date.now();
      await waitFor(async () => (await active('nightly')) === undefined, 'the alert resolved');
      await waitFor(() => notifications.some((n) => n.status === 'resolved'), 'Alertmanager’s resolved notification');
      const resolved = notifications.find((n) => n.status === 'resolved')!.alerts[0]!;
      expect(resolved.labels.builder_job).toBe('nightly');
      // resolved by builder's post (endsAt = the recovery), not by a lapse (endsAt after the last re-send)
      expect(Date.parse(resolved.endsAt)).toBeLessThanOrEqual(succeededBy);
      expect(notifications[0]!.status).toBe('firing');
    });
  },
);
