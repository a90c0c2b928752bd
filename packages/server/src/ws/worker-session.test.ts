import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeOutputFrame, type ServerToWorker, type WorkerInfo } from '@builder/protocol';
import { runPath, type RunPath } from '../test-support/run-path.ts';
import type { PeerSocket } from './socket.ts';
import { startWorkerSession } from './worker-session.ts';

/** A connection the session writes to; what it sent is kept, decoded. */
class FakeSocket extends EventEmitter {
  readyState = 1;
  bufferedAmount = 0;
  sent: ServerToWorker[] = [];
  closed: { code?: number; reason?: string } | undefined;
  send(data: string | Buffer): void {
    this.sent.push(JSON.parse(String(data)) as ServerToWorker);
  }
  close(code?: number, reason?: string): void {
    this.closed = { code, reason };
    this.readyState = 3;
  }
  terminate(): void {
    this.readyState = 3;
  }
  ping(): void {}
}

const info = (running: WorkerInfo['running'] = []): WorkerInfo => ({
  name: 'w1',
  platform: 'p',
  labels: [],
  capacity: 1,
  executor: 'host',
  running,
});

describe('worker session on the run path (no server, no network)', () => {
  let p: RunPath;
  let ws: FakeSocket;
  const connect = (running: WorkerInfo['running'] = []) =>
    startWorkerSession(
      { ...p, version: 'test', heartbeatMs: 10_000 },
      ws as unknown as PeerSocket,
      { type: 'hello', versions: [1], role: 'worker', token: 't', worker: info(running) },
      1,
      'worker',
    );
  const msg = (m: object) => Buffer.from(JSON.stringify(m));
  beforeEach(() => {
    p = runPath();
    ws = new FakeSocket();
  });
  afterEach(() => p.close());

  it('sends the welcome first, then the assignment its free slot got in the same batch', async () => {
    const [run] = p.enqueue(p.job({ name: 'j' }));
    await p.settle();
    connect();
    expect(ws.sent).toEqual([]); // nothing before the hello's batch commits
    const commits = p.commit.commits;
    await p.settle();
    expect(p.commit.commits - commits).toBe(1);
    expect(ws.sent.map((m) => m.type)).toEqual(['welcome', 'assign']);
    expect(p.workers.list().map((w) => w.name)).toEqual(['w1']);
    expect(p.run(run!.id)).toMatchObject({ state: 'assigned', worker: 'w1' });
  });

  it('routes started, output and finished into the run, each answered after its commit', async () => {
    const [run] = p.enqueue(p.job({ name: 'j' }));
    const s = connect();
    await p.settle();
    const id = run!.id;
    s.onMessage(msg({ type: 'started', runId: id, attempt: 1, startedAt: p.clock.t }));
    s.onBinary(
      encodeOutputFrame({ type: 'output', runId: id, attempt: 1, seq: 1, ts: 0, stream: 'out' }, Buffer.from('hi\n')),
    );
    s.onMessage(
      msg({
        type: 'finished',
        runId: id,
        attempt: 1,
        lastSeq: 1,
        result: { kind: 'exited', code: 0 },
        finishedAt: p.clock.t,
      }),
    );
    expect(ws.sent.slice(2)).toEqual([]);
    await p.settle();
    expect(ws.sent.slice(2)).toEqual([
      { type: 'ack', runId: id, attempt: 1, seq: 1 },
      { type: 'finished-ack', runId: id, attempt: 1 },
    ]);
    expect(p.run(id)).toMatchObject({ state: 'succeeded', logSeq: 1, logBytes: 3 });
    expect(p.told.filter((e) => e.type === 'output')).toHaveLength(1);
  });

  it('answers a malformed message with an error and keeps the session', async () => {
    const s = connect();
    await p.settle();
    s.onMessage(Buffer.from('{"type":"started"}'));
    expect(ws.sent.at(-1)).toMatchObject({ type: 'error', error: { code: 'BAD_MESSAGE' } });
    expect(ws.closed).toBeUndefined();
  });

  it('loses a run it had when the worker comes back without it, and forgets the worker on close', async () => {
    const [run] = p.enqueue(p.job({ name: 'j' }));
    const first = connect();
    await p.settle();
    first.onClose();
    await p.settle();
    expect(p.registry.get('w1')).toBeUndefined();
    ws = new FakeSocket();
    connect([]); // restarted: it holds nothing
    await p.settle();
    expect(p.run(run!.id).state).toBe('lost');
    expect(ws.sent.map((m) => m.type)).toEqual(['welcome']);
  });
});
