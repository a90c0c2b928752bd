/**
 * The queue must not stall on an assignment a worker never got: the interleaving the fault soak
 * found (a reconnecting worker assigned work before its welcome) and the reconciliation that
 * catches any other way an assignment goes missing. Raw protocol workers, real server process.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, waitFor } from './harness.ts';
import { Peer, type WireMessage } from './wire.ts';

describe('reconciliation: what a worker really holds', () => {
  let c: Cluster;
  const peers: Peer[] = [];
  const worker = async (name: string, platform: string, running: unknown[] = []) => {
    const p = await Peer.open(c.url);
    peers.push(p);
    const w = { name, platform, labels: [], capacity: 1, executor: 'host', running };
    const first = await p.hello('worker', c.workerToken(name), { worker: w });
    return { p, first };
  };
  const assigned = (m: WireMessage) =>
    (m as unknown as { run: { runId: string; attempt: number; number: number } }).run;
  const schedule = async (name: string, platform: string, extra: string[] = []) => {
    const r = await c.client([
      'schedule',
      name,
      '--platform',
      platform,
      '--script',
      c.script(`${name}.sh`, 'sleep 100'),
      ...extra,
    ]);
    expect(r.code, r.stderr).toBe(0);
  };

  beforeAll(async () => {
    c = await Cluster.start(['--lease', '60s']);
  }, 30_000);
  afterAll(async () => {
    for (const p of peers) p.close();
    await c?.stop();
  });

  it('a worker reconnecting while runs are queued for its platform gets its welcome before any assignment', async () => {
    await schedule('q', 'raw');
    const a = await worker('rw', 'raw');
    expect(a.first.type).toBe('welcome');
    await c.client(['execute', 'q']);
    await c.client(['execute', 'q']);
    expect(assigned(await a.p.next(5000, 'the first assignment')).number).toBe(1);
    a.p.close(); // the worker dies; q/2 stays queued behind q/1's slot
    await waitFor(async () => {
      const ws = JSON.parse((await c.client(['workers', '--json'])).stdout) as { name: string; connected: boolean }[];
      return ws.some((w) => w.name === 'rw' && !w.connected);
    }, 'the server to see rw gone');

    // it comes back without q/1: q/1 is lost in the hello's batch, which frees the slot for q/2
    const b = await worker('rw', 'raw');
    expect(b.first.type).toBe('welcome');
    const next = await b.p.next(5000, 'the assignment of q/2');
    expect(next.type).toBe('assign');
    expect(assigned(next).number).toBe(2);
    expect((await c.run('q/1')).state).toBe('lost');
  });

  it('an assignment the worker has seen but does not hold is reclaimed: never started goes back uncharged, running is lost', async () => {
    await schedule('r', 'raw2', ['--retries', '1', '--retry-backoff', '0']);
    const { p } = await worker('rc', 'raw2');
    await c.client(['execute', 'r']);
    const first = assigned(await p.next(5000, 'the assignment'));
    expect(first.attempt).toBe(1);

    // crossing messages: a heartbeat sent before the assignment arrived judges nothing
    p.send({ type: 'heartbeat', running: [], assignsSeen: 0 });
    expect(await p.quiet(500)).toBeUndefined();
    expect((await c.run('r/1')).state).toBe('assigned');

    // the worker saw it (assignsSeen 1) and does not hold it: back to the queue, same attempt
    p.send({ type: 'heartbeat', running: [], assignsSeen: 1 });
    const again = await p.next(5000, 'the same attempt assigned again');
    expect(assigned(again)).toMatchObject({ runId: first.runId, attempt: 1 });
    let info = JSON.parse((await c.client(['info', '--json'])).stdout) as { reclaimed: object };
    expect(info.reclaimed).toEqual({ assigned: 1, running: 0 });

    // listed: kept; then started and no longer listed: the running attempt is lost, the retry runs
    p.send({ type: 'heartbeat', running: [{ runId: first.runId, attempt: 1 }], assignsSeen: 2 });
    expect(await p.quiet(300)).toBeUndefined();
    p.send({ type: 'started', runId: first.runId, attempt: 1, startedAt: Date.now() });
    await waitFor(async () => (await c.run('r/1')).state === 'running', 'r/1 to run');
    p.send({ type: 'heartbeat', running: [], assignsSeen: 2 });
    const retry = assigned(await p.next(5000, 'attempt 2'));
    expect(retry).toMatchObject({ runId: first.runId, attempt: 2 });
    info = JSON.parse((await c.client(['info', '--json'])).stdout) as { reclaimed: object };
    expect(info.reclaimed).toEqual({ assigned: 1, running: 1 });
    expect((await c.client(['info'])).stdout).toMatch(/Reclaimed since start: 1 assignment.*1 running attempt/);
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    expect(metrics).toContain('builder_attempts_reclaimed_total{platform="raw2",state="assigned"} 1');
    expect(metrics).toContain('builder_attempts_reclaimed_total{platform="raw2",state="running"} 1');
    const log = (await c.client(['logs', 'r/1'])).stdout;
    expect(log).toContain('[builder] worker rc does not have attempt 1; it goes back to the queue');
    expect(log).toContain('[builder] worker rc no longer has attempt 1: lost');

    // a run it lists that it should not run: told to kill it
    const ghost = randomUUID();
    p.send({
      type: 'heartbeat',
      running: [
        { runId: first.runId, attempt: 2 },
        { runId: ghost, attempt: 1 },
      ],
      assignsSeen: 3,
    });
    expect(await p.next()).toMatchObject({ type: 'cancel', runId: ghost, attempt: 1 });
  });
});
