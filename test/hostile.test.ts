/**
 * Malformed and hostile WebSocket traffic: every bad message gets an error with a stable code
 * (and a close where the protocol says so), nothing reaches the run logic unvalidated, and the
 * server keeps serving real workers and clients afterwards.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, waitFor } from './harness.ts';
import { Peer, outputMessage, type WireMessage } from './wire.ts';

const errorCode = (m: WireMessage) => (m as { error?: { code?: string } }).error?.code;

describe('hostile WebSocket traffic', () => {
  let c: Cluster;
  const peers: Peer[] = [];
  let silent: Peer;
  let silentSince = 0;
  const open = async () => {
    const p = await Peer.open(c.url);
    peers.push(p);
    return p;
  };
  const client = async (token = c.tokens.admin) => {
    const p = await open();
    const welcome = await p.hello('client', token);
    expect(welcome.type).toBe('welcome');
    return p;
  };
  const fakeWorker = (name: string, running: unknown[] = []) => ({
    worker: { name, platform: 'nowhere', labels: [], capacity: 1, executor: 'host', running },
  });

  beforeAll(async () => {
    c = await Cluster.start(['--lease', '4s']);
    c.startWorker('w1');
    await c.waitForWorkers('w1');
    await c.schedule('ok', 'echo fine\n');
    silent = await open(); // never says hello
    silentSince = Date.now();
  });
  afterAll(async () => {
    for (const p of peers) p.close();
    await c?.stop();
  });

  describe('before the hello', () => {
    it('garbage text: BAD_MESSAGE, then the connection is closed', async () => {
      const p = await open();
      p.send('GET / HTTP/1.0 this is not json');
      const m = await p.next();
      expect(m).toMatchObject({ type: 'error', error: { code: 'BAD_MESSAGE' } });
      expect((await p.closedP).code).toBe(1008);
    });

    it('valid JSON that is not a hello: BAD_MESSAGE and close', async () => {
      const p = await open();
      p.send({ type: 'request', id: 1, method: 'info', params: {} });
      expect(errorCode(await p.next())).toBe('BAD_MESSAGE');
      expect((await p.closedP).code).toBe(1008);
    });

    it('a binary frame: BAD_MESSAGE', async () => {
      const p = await open();
      p.send(Buffer.from([0x00, 0xff, 0x7b, 0x7d]));
      expect(await p.next()).toMatchObject({ type: 'error', error: { code: 'BAD_MESSAGE' } });
    });

    it('an unknown token: UNAUTHORIZED and close', async () => {
      const p = await open();
      const m = await p.hello('client', 'bld_admin_0000000000000000000000');
      expect(m).toMatchObject({ type: 'error', error: { code: 'UNAUTHORIZED' } });
      expect((await p.closedP).code).toBe(1008);
    });

    it('versions [99]: UNSUPPORTED_VERSION and close', async () => {
      const p = await open();
      p.send({ type: 'hello', versions: [99], role: 'client', token: c.tokens.admin });
      expect(errorCode(await p.next())).toBe('UNSUPPORTED_VERSION');
      expect((await p.closedP).code).toBe(1008);
    });

    it('a worker token as a client, a read token as a worker: FORBIDDEN and close', async () => {
      const a = await open();
      expect(errorCode(await a.hello('client', c.tokens.worker))).toBe('FORBIDDEN');
      expect((await a.closedP).code).toBe(1008);
      const b = await open();
      expect(errorCode(await b.hello('worker', c.tokens.read, fakeWorker('readworker')))).toBe('FORBIDDEN');
      expect((await b.closedP).code).toBe(1008);
    });

    it('a worker hello without its worker description: BAD_MESSAGE and close', async () => {
      const p = await open();
      expect(errorCode(await p.hello('worker', c.tokens.worker))).toBe('BAD_MESSAGE');
      expect((await p.closedP).code).toBe(1008);
    });

    it('a message over 4 MiB: closed with 1009', async () => {
      const p = await open();
      p.send(`{"type":"hello","token":"${'x'.repeat(4 * 1024 * 1024)}"}`);
      expect((await p.closedP).code).toBe(1009);
    });
  });

  describe('after a client hello', () => {
    it('invalid JSON: an error with a code, and the connection stays up', async () => {
      const p = await client();
      p.send('{"type":"request","id":');
      expect(await p.next()).toMatchObject({ type: 'error', error: { code: 'BAD_MESSAGE' } });
      expect(await p.request('jobs')).toMatchObject({ ok: true });
    });

    it('a binary frame: BAD_MESSAGE, the connection stays up', async () => {
      const p = await client();
      p.send(Buffer.from('{"type":"request","id":1,"method":"jobs","params":{}}'));
      expect(errorCode(await p.next())).toBe('BAD_MESSAGE');
      expect(await p.request('jobs')).toMatchObject({ ok: true });
    });

    it('an unknown method is answered, with the request id', async () => {
      const p = await client();
      p.send({ type: 'request', id: 41, method: 'dropDatabase', params: {} });
      const m = await p.next();
      expect(m).toMatchObject({ type: 'response', id: 41, ok: false });
      expect(['BAD_MESSAGE', 'NOT_FOUND', 'INVALID_ARGUMENT']).toContain(errorCode(m));
    });

    it('bad params: INVALID_ARGUMENT with the request id', async () => {
      const p = await client();
      p.send({ type: 'request', id: 42, method: 'execute', params: { name: 12 } });
      expect(await p.next()).toMatchObject({
        type: 'response',
        id: 42,
        ok: false,
        error: { code: 'INVALID_ARGUMENT' },
      });
      p.send({ type: 'request', id: 43, method: 'runs', params: { limit: -5 } });
      expect(await p.next()).toMatchObject({
        type: 'response',
        id: 43,
        ok: false,
        error: { code: 'INVALID_ARGUMENT' },
      });
      p.send({
        type: 'request',
        id: 44,
        method: 'schedule',
        params: { name: '../../etc', platforms: ['x'], script: 'true', schedule: null },
      });
      expect(await p.next()).toMatchObject({
        type: 'response',
        id: 44,
        ok: false,
        error: { code: 'INVALID_ARGUMENT' },
      });
      p.send({ type: 'request', id: 45, method: 'run', params: { run: 'no-such-job/1' } });
      expect(await p.next()).toMatchObject({ type: 'response', id: 45, ok: false, error: { code: 'NOT_FOUND' } });
      // and the connection still serves
      expect(await p.request('info')).toMatchObject({ ok: true });
    });

    it('a read token calling execute: FORBIDDEN, nothing queued', async () => {
      const p = await client(c.tokens.read);
      expect(await p.request('execute', { name: 'ok' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
      expect(await p.request('unschedule', { name: 'ok' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
      const runs = (await p.request('runs', { job: 'ok' })) as WireMessage & { result: unknown[] };
      expect(runs).toMatchObject({ ok: true });
      expect(runs.result).toEqual([]);
    });

    it('deeply nested JSON: BAD_MESSAGE or an answer, never a crash', async () => {
      const p = await client();
      const depth = 500_000;
      p.send(`{"type":"request","id":50,"method":"jobs","params":${'['.repeat(depth)}${']'.repeat(depth)}}`);
      const m = await p.next();
      expect(m.type === 'error' || (m.type === 'response' && m.id === 50 && m.ok === false)).toBe(true);
      expect(await p.request('jobs')).toMatchObject({ ok: true });
    });

    it('a worker message on a client connection: BAD_MESSAGE', async () => {
      const p = await client();
      p.send({
        type: 'finished',
        runId: randomUUID(),
        attempt: 1,
        lastSeq: 0,
        result: { kind: 'exited', code: 0 },
        finishedAt: Date.now(),
      });
      expect(errorCode(await p.next())).toBe('BAD_MESSAGE');
    });

    it('a message over 4 MiB: closed with 1009', async () => {
      const p = await client();
      p.send({ type: 'request', id: 9, method: 'jobs', params: { pad: 'y'.repeat(4 * 1024 * 1024 + 10) } });
      expect((await p.closedP).code).toBe(1009);
    });
  });

  describe('after a worker hello', () => {
    it('claims a run the server never gave it: told to kill it', async () => {
      const p = await open();
      const runId = randomUUID();
      const w = await p.hello(
        'worker',
        c.tokens.worker,
        fakeWorker('claimer', [{ runId, attempt: 1, lastSeq: 3, finished: false }]),
      );
      expect(w).toMatchObject({ type: 'welcome', reattach: [{ runId, attempt: 1, action: 'kill' }] });
    });

    it('output, started and finished for an unknown run are answered and change nothing; a non-UUID run id is BAD_MESSAGE', async () => {
      const p = await open();
      expect((await p.hello('worker', c.tokens.worker, fakeWorker('intruder'))).type).toBe('welcome');
      const runId = randomUUID();
      p.send(outputMessage({ runId, attempt: 1, seq: 1 }, 'injected\n'));
      expect(await p.next()).toMatchObject({ type: 'cancel', runId, attempt: 1 });
      p.send({ type: 'started', runId, attempt: 1, startedAt: Date.now() });
      expect(await p.next()).toMatchObject({ type: 'cancel', runId, attempt: 1 });
      p.send({
        type: 'finished',
        runId,
        attempt: 1,
        lastSeq: 0,
        result: { kind: 'exited', code: 0 },
        finishedAt: Date.now(),
      });
      expect(await p.next()).toMatchObject({ type: 'finished-ack', runId, attempt: 1 });

      p.send(outputMessage({ runId: 'not-a-uuid', attempt: 1, seq: 1 }, 'x'));
      expect(errorCode(await p.next())).toBe('BAD_MESSAGE');
      p.send(outputMessage({ runId, attempt: 0, seq: -1, stream: 'weird' }, 'x'));
      expect(errorCode(await p.next())).toBe('BAD_MESSAGE');
      p.send(outputMessage({ runId, attempt: 1, seq: 1 }, 'z'.repeat(256 * 1024 + 1)));
      expect(errorCode(await p.next())).toBe('BAD_MESSAGE');
      // binary garbage: too short, absurd header length, header not JSON
      for (const junk of [
        Buffer.from([0, 0]),
        Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]),
        Buffer.concat([Buffer.from([0, 0, 0, 4]), Buffer.from('\xff{{{zz')]),
      ]) {
        p.send(junk);
        expect(errorCode(await p.next(5000, `an error for junk ${junk.toString('hex')}`))).toBe('BAD_MESSAGE');
      }
      p.send({ type: 'request', id: 1, method: 'jobs', params: {} });
      expect(errorCode(await p.next())).toBe('BAD_MESSAGE');
      p.send('}{');
      expect(errorCode(await p.next())).toBe('BAD_MESSAGE');
      // still connected and answered
      p.send({ type: 'finished', runId, attempt: 2, lastSeq: 0, result: { kind: 'lost' }, finishedAt: Date.now() });
      expect(await p.next()).toMatchObject({ type: 'finished-ack', runId, attempt: 2 });
      expect(p.closed).toBeUndefined();
    });

    it("another worker's run: output and finished from an intruder are refused, the run is not touched", async () => {
      const release = join(c.dir, 'victim.release');
      // prints 1..5, waits until the test is done forging, then 6..10
      await c.schedule(
        'victim',
        `for i in 1 2 3 4 5; do echo "real $i"; done\nwhile [ ! -e ${release} ]; do sleep 0.05; done\nfor i in 6 7 8 9 10; do echo "real $i"; sleep 0.05; done\n`,
      );
      const following = c.clientProc(['execute', 'victim', '--follow']);
      await waitFor(() => following.stdout().includes('real 5'), 'the victim run to print');
      const { id } = await c.run('victim/1');
      const p = await open();
      expect((await p.hello('worker', c.tokens.worker, fakeWorker('intruder2'))).type).toBe('welcome');
      for (let seq = 1; seq <= 40; seq++) {
        p.send(outputMessage({ runId: id, attempt: 1, seq }, `forged ${seq}\n`));
      }
      const answers = await Promise.all(Array.from({ length: 40 }, () => p.next()));
      expect(answers.every((m) => m.type === 'cancel' && m.runId === id)).toBe(true);
      p.send({ type: 'started', runId: id, attempt: 1, startedAt: Date.now() });
      expect((await p.next()).type).toBe('cancel');
      p.send({
        type: 'finished',
        runId: id,
        attempt: 1,
        lastSeq: 0,
        result: { kind: 'exited', code: 1 },
        finishedAt: Date.now(),
      });
      expect((await p.next()).type).toBe('finished-ack');
      expect((await c.run('victim/1')).state).toBe('running');
      writeFileSync(release, '');

      expect(await following.exited).toBe(0);
      expect(await c.run('victim/1')).toMatchObject({
        state: 'succeeded',
        worker: 'w1',
        result: { kind: 'exited', code: 0 },
      });
      const observed = await c.client(['observe', 'victim/1']);
      expect(observed.stdout).toBe(Array.from({ length: 10 }, (_, i) => `real ${i + 1}\n`).join(''));
    });
  });

  it('200 connections opened and dropped without a hello, and raw TCP garbage', async () => {
    for (let batch = 0; batch < 4; batch++) {
      const batchPeers = await Promise.all(Array.from({ length: 50 }, () => Peer.open(c.url)));
      for (const [i, p] of batchPeers.entries()) {
        if (i % 2) p.ws.terminate();
        else p.ws.close();
      }
      await Promise.all(batchPeers.map((p) => p.closedP));
    }
    await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) =>
          new Promise<void>((done) => {
            const s = connect(c.port, '127.0.0.1', () => {
              s.write(
                i % 2
                  ? '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage-tls-hello'
                  : 'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
              );
              setTimeout(() => s.destroy(), 50);
            });
            s.on('error', () => undefined);
            s.on('close', () => done());
          }),
      ),
    );
    expect(c.server!.child.exitCode).toBeNull();
  });

  it('a connection that never says hello is closed with HELLO_REQUIRED', async () => {
    const m = await silent.next(Math.max(1000, 12_000 - (Date.now() - silentSince)));
    expect(m).toMatchObject({ type: 'error', error: { code: 'HELLO_REQUIRED' } });
    expect((await silent.closedP).code).toBe(1008);
  });

  it('after all that the server still serves: execute --follow on the real worker, /healthz', async () => {
    expect(c.server!.child.exitCode).toBeNull();
    const health = await fetch(`${c.url}/healthz`);
    expect(health.status).toBe(200);
    const r = await c.client(['execute', 'ok', '--follow']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('fine');
    const workers = JSON.parse((await c.client(['workers', '--json'])).stdout) as {
      name: string;
      connected: boolean;
    }[];
    expect(workers.find((w) => w.name === 'w1')?.connected).toBe(true);
  });
});
