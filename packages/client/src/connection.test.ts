import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, ProtocolError, type ObserveEvent } from '@builder/protocol';
import { Connection } from './connection.ts';
import { BadServerMessageError, ConnectionError, ServerError } from './errors.ts';
import { FakeServer } from './testing/fake-server.ts';
import { finishedRun, makeJob, runningRun } from './testing/fixtures.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(options: Parameters<typeof FakeServer.start>[0] = {}): Promise<FakeServer> {
  const server = await FakeServer.start(options);
  cleanups.push(() => server.close());
  return server;
}

async function connect(server: FakeServer, token = 'secret'): Promise<Connection> {
  const conn = await Connection.open({ remote: server.url, token });
  cleanups.push(() => conn.close());
  return conn;
}

describe('Connection', () => {
  it('says hello, calls methods and validates results', async () => {
    const server = await start({ handler: () => [makeJob()] });
    const conn = await connect(server);
    expect(conn.welcome.serverVersion).toBe('fake');
    await expect(conn.call('jobs', {})).resolves.toEqual([makeJob()]);
    expect(server.violations).toEqual([]);
  });

  it('turns error responses into ServerError with the code', async () => {
    const server = await start({
      handler: () => {
        throw new ProtocolError(ErrorCode.NotFound, 'no job nope');
      },
    });
    const conn = await connect(server);
    const error = await conn.call('job', { name: 'nope' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServerError);
    expect((error as ServerError).code).toBe('NOT_FOUND');
  });

  it('refuses a result that does not match the schema', async () => {
    const server = await start({ handler: () => ({ not: 'a job list' }) });
    const conn = await connect(server);
    await expect(conn.call('jobs', {})).rejects.toBeInstanceOf(BadServerMessageError);
  });

  it('checks params before sending them', async () => {
    const server = await start();
    const conn = await connect(server);
    await expect(conn.call('job', { name: '../etc' })).rejects.toBeInstanceOf(ProtocolError);
    expect(server.requests).toEqual([]);
  });

  it('reports a refused hello as UNAUTHORIZED', async () => {
    const server = await start({ token: 'secret' });
    const error = await Connection.open({ remote: server.url, token: 'wrong' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServerError);
    expect((error as ServerError).code).toBe('UNAUTHORIZED');
  });

  it('delivers events sent right behind the observe response', async () => {
    const server = await start({
      handler: (req, conn) => {
        if (req.method !== 'observe') return {};
        conn.afterResponse(() => {
          conn.event(3, { kind: 'console', data: 'a\n' });
          conn.event(3, { kind: 'console', data: 'b\n' });
          conn.event(3, { kind: 'end', run: finishedRun(0) });
        });
        return { sub: 3, run: runningRun() };
      },
    });
    const conn = await connect(server);
    const events: ObserveEvent[] = [];
    const ended = new Promise<void>((resolve) => {
      void conn.observe({ run: 'hello/7' }, (event) => {
        events.push(event);
        if (event.kind === 'end') resolve();
      });
    });
    await ended;
    expect(events.map((e) => e.kind)).toEqual(['console', 'console', 'end']);
  });

  it('rejects pending calls and tells listeners when the server goes away', async () => {
    const server = await start({
      handler: (_req, conn) => {
        conn.terminate();
        return new Promise(() => {});
      },
    });
    const conn = await connect(server);
    const closed = new Promise<ConnectionError>((resolve) => conn.onClose(resolve));
    await expect(conn.call('info', {})).rejects.toBeInstanceOf(ConnectionError);
    await expect(closed).resolves.toBeInstanceOf(ConnectionError);
  });

  it('fails fast when nothing listens', async () => {
    const server = await FakeServer.start();
    const url = server.url;
    await server.close();
    const error = await Connection.open({ remote: url, token: 't' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).kind).toBe('unreachable');
  });
});
