import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildClient } from './testing/build.ts';
import { FakeServer, type Handler } from './testing/fake-server.ts';
import { finishedRun, makeRun, runningRun } from './testing/fixtures.ts';
import { CliRunner } from './testing/spawn.ts';

const cli = new CliRunner();
const RUN_ID_REF = 'hello#7';
const servers: FakeServer[] = [];

beforeAll(() => buildClient());
afterEach(async () => {
  cli.killAll();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(handler: Handler, port?: number): Promise<FakeServer> {
  const server = await FakeServer.start({ handler, token: 'secret', ...(port !== undefined && { port }) });
  servers.push(server);
  return server;
}

function watch(server: FakeServer, ...args: string[]) {
  return cli.run(['watch', ...args], { env: { BUILDER_REMOTE: server.url, BUILDER_TOKEN: 'secret' } });
}

describe('watch', () => {
  it('reconnects after the server drops the connection mid-run and exits 0 when the run ends', async () => {
    const server = await start((req, conn) => {
      if (req.method !== 'observe') return {};
      if (conn.index === 1) {
        conn.afterResponse(() => setTimeout(() => conn.terminate(), 100));
      } else {
        conn.afterResponse(() => setTimeout(() => conn.event(5, { kind: 'end', run: finishedRun(0) }), 100));
      }
      return { sub: 5, run: runningRun() };
    });
    const r = await watch(server, 'hello/7', '--give-up', '10');
    expect(r.stdout).toBe('hello/7: running on w1\nhello/7: exited 0 (succeeded)\n');
    expect(r.stderr).toMatch(/^builder-client: connection to .* closed.*retrying in/);
    expect(r.code).toBe(0);
    expect(server.requestsFor('observe').map((q) => [q.connection, q.params])).toEqual([
      [1, { run: 'hello/7', console: false }],
      [2, { run: 'hello/7', console: false }],
    ]);
    expect(server.violations).toEqual([]);
  });

  it('waits while the server is down and carries on when it is back', async () => {
    const endingHandler: Handler = (req, conn) => {
      if (req.method === 'observe') conn.afterResponse(() => conn.event(1, { kind: 'end', run: finishedRun(3) }));
      return { sub: 1, run: runningRun() };
    };
    let restart: Promise<void> | undefined;
    const first = await start((req) => {
      if (req.method !== 'observe') return {};
      // the whole server goes away, and comes back on the same port a moment later
      const port = first.port;
      restart ??= first
        .close()
        .then(() => new Promise((resolve) => setTimeout(resolve, 700)))
        .then(() => start(endingHandler, port))
        .then(() => {});
      return new Promise(() => {});
    });
    const r = await watch(first, RUN_ID_REF, '--give-up', '20');
    await restart;
    expect(r.stdout).toBe('hello/7: running on w1\nhello/7: exited 3 (failed)\n');
    expect(r.stderr).toMatch(/retrying in/);
    expect(r.code).toBe(1);
  });

  it('gives up with exit 4 when the server stays away', async () => {
    const server = await FakeServer.start();
    const url = server.url;
    await server.close();
    const started = Date.now();
    const r = await cli.run(['watch', 'hello/7', '--give-up', '1'], {
      env: { BUILDER_REMOTE: url, BUILDER_TOKEN: 'secret' },
    });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/gave up after 1s\n$/);
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it('with --job waits for a matching run to appear', async () => {
    let polls = 0;
    const server = await start((req, conn) => {
      if (req.method === 'latest') return ++polls < 3 ? null : makeRun();
      conn.afterResponse(() => conn.event(2, { kind: 'end', run: finishedRun(0) }));
      return { sub: 2, run: makeRun({ waiting: 'no worker for debian-12 online' }) };
    });
    const r = await watch(server, '--job', 'hello', '--platform', 'debian-12', '--param', 'BRANCH=main');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hello/7: queued (no worker for debian-12 online)\nhello/7: exited 0 (succeeded)\n');
    expect(r.stderr).toBe('builder-client: no run of job hello yet; waiting for one\n');
    expect(server.requestsFor('latest')[0]?.params).toEqual({
      job: 'hello',
      platform: 'debian-12',
      params: { BRANCH: 'main' },
    });
  });

  it('--logs prints the console once across a reconnect; --json lines parse', async () => {
    const server = await start((req, conn) => {
      if (req.method !== 'observe') return {};
      conn.afterResponse(() => {
        if (conn.index === 1) {
          conn.event(1, { kind: 'console', data: 'a\n' });
          conn.event(1, { kind: 'console', data: 'b\n' });
          setTimeout(() => conn.terminate(), 50);
        } else {
          conn.event(1, { kind: 'console', data: 'a\nb\n' });
          conn.event(1, { kind: 'console', data: 'c\n' });
          conn.event(1, { kind: 'end', run: finishedRun(0) });
        }
      });
      return { sub: 1, run: runningRun() };
    });
    const human = await watch(server, 'hello/7', '--logs');
    expect(human.code).toBe(0);
    expect(human.stdout).toBe('a\nb\nc\n');
    expect(human.stderr).toContain('hello/7: running on w1\n');

    const json = await watch(server, 'hello/7', '--logs', '--json');
    expect(json.code).toBe(0);
    const lines = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; data?: string });
    expect(
      lines
        .filter((l) => l.kind === 'console')
        .map((l) => l.data)
        .join(''),
    ).toBe('a\nb\nc\n');
    expect(lines.at(-1)).toMatchObject({ kind: 'result', exitCode: 0 });
  });
});
