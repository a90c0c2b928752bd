import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, ProtocolError, type JobSpecInput } from '@builder/protocol';
import { buildClient } from './testing/build.ts';
import { FakeServer, type FakeServerOptions } from './testing/fake-server.ts';
import { RUN_ID, RUN_ID_2, finishedRun, makeJob, makeRun, runningRun } from './testing/fixtures.ts';
import { CliRunner } from './testing/spawn.ts';

const cli = new CliRunner();
const servers: FakeServer[] = [];
let dir = '';

beforeAll(async () => {
  buildClient();
  dir = await mkdtemp(join(tmpdir(), 'builder-client-test-'));
});
afterEach(async () => {
  cli.killAll();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function start(options: FakeServerOptions = {}): Promise<FakeServer> {
  const server = await FakeServer.start({ token: 'secret', ...options });
  servers.push(server);
  return server;
}

function run(server: FakeServer | string, ...args: string[]) {
  const remote = typeof server === 'string' ? server : server.url;
  return cli.run(args, { env: { BUILDER_REMOTE: remote, BUILDER_TOKEN: 'secret' } });
}

async function script(text = '#!/bin/sh\necho hi\n'): Promise<string> {
  const file = join(dir, `script-${Math.random().toString(36).slice(2)}.sh`);
  await writeFile(file, text);
  return file;
}

describe('usage errors exit 2 with one line', () => {
  it('documents the exit codes in --help', async () => {
    const r = await cli.run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Exit codes:[\s\S]*3 +not found[\s\S]*4 +server unreachable/);
  });

  it.each([
    [['schedule', 'j', '--platform', 'p', '--script', 'x', '--bogus'], /unknown option '--bogus'/],
    [['schedule', 'j', '--platform', 'p', '--script', 'x', '--period', 'monthly'], /--period.*monthly/],
    [['schedule', 'j', '--script', 'x'], /--platform/],
    [['reschedule', 'j', 'next-tuesday'], /invalid date-time "next-tuesday"/],
    [['runs', '--limit', 'lots'], /--limit/],
    [['watch'], /either RUN or --job/],
    [['nonsense'], /unknown command 'nonsense'/],
  ])('%j', async (args, message) => {
    const r = await run('http://127.0.0.1:9', ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^builder-client: [^\n]*\n$/);
  });

  it('names an unreadable script file', async () => {
    const missing = join(dir, 'missing.sh');
    const r = await run('http://127.0.0.1:9', 'schedule', 'j', '--platform', 'p', '--script', missing);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`builder-client: cannot read script ${missing}: no such file\n`);
  });

  it('prints the server message for INVALID_ARGUMENT', async () => {
    const server = await start({
      handler: () => {
        throw new ProtocolError(ErrorCode.InvalidArgument, 'bad cron expression "nope"');
      },
    });
    const r = await run(server, 'schedule', 'j', '--platform', 'p', '--script', await script(), '--cron', 'nope');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('bad cron expression "nope"');
  });
});

describe('server errors', () => {
  it('exits 3 on NOT_FOUND', async () => {
    const server = await start({
      handler: () => {
        throw new ProtocolError(ErrorCode.NotFound, 'no job named nope');
      },
    });
    const r = await run(server, 'info', 'nope');
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('builder-client: no job named nope (NOT_FOUND)\n');
    expect(server.requests).toMatchObject([{ method: 'job', params: { name: 'nope' } }]);
  });

  it('exits 4 when nothing listens', async () => {
    const server = await FakeServer.start();
    const url = server.url;
    await server.close();
    const r = await run(url, 'jobs');
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^builder-client: cannot connect to .*connection refused/);
  });

  it('exits 4 when the token is refused', async () => {
    const server = await start();
    const r = await cli.run(['jobs', '--remote', server.url, '--token', 'wrong']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/unknown token \(UNAUTHORIZED\)/);
  });
});

describe('schedule', () => {
  it('sends the job spec: platforms, cron, tz, params, limits', async () => {
    const server = await start({
      handler: (req) => {
        const spec = req.params as JobSpecInput;
        return {
          job: makeJob({ ...spec, nextRunAt: Date.UTC(2025, 0, 31, 1, 0, 0), timezone: spec.timezone ?? 'UTC' }),
          created: true,
        };
      },
    });
    const file = await script('make all\n');
    const r = await run(
      server,
      'schedule',
      'nightly',
      '--platform',
      'debian-12,ubuntu-24',
      '--platform',
      'freebsd-14',
      '--script',
      file,
      '--cron',
      '0 2 * * *',
      '--tz',
      'Europe/Berlin',
      '--param',
      'BRANCH=main',
      '--param',
      'OPT=a=b',
      '--timeout',
      '600',
      '--retries',
      '2',
      '--missed',
      'skip',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(server.violations).toEqual([]);
    expect(server.requests[0]?.params).toEqual({
      name: 'nightly',
      platforms: ['debian-12', 'ubuntu-24', 'freebsd-14'],
      script: 'make all\n',
      schedule: '0 2 * * *',
      timezone: 'Europe/Berlin',
      missed: 'skip',
      timeoutSec: 600,
      retries: 2,
      params: { BRANCH: 'main', OPT: 'a=b' },
    });
    expect(r.stdout).toBe('scheduled nightly (created), next run: 2025-01-31T02:00:00+01:00\n');
  });

  it('renders --template per platform and sends the scripts with the template and its variables', async () => {
    const server = await start({
      handler: (req) => {
        const spec = req.params as JobSpecInput;
        return { job: makeJob({ name: spec.name, platforms: spec.platforms, template: spec.template }), created: true };
      },
    });
    const templates = join(dir, 'templates');
    await mkdir(join(templates, 'pkg'), { recursive: true });
    await writeFile(join(templates, 'pkg', 'debian.sh'), 'apt build {{REPO}} for {{PLATFORM}}\n');
    await writeFile(join(templates, 'pkg', 'default.sh'), 'build {{ REPO }}\n');
    const r = await run(
      server,
      'schedule',
      'pkg',
      '--platform',
      'debian-12,alpine-3',
      '--template',
      'pkg',
      '--templates-dir',
      templates,
      '--var',
      'REPO=https://example.org/x.git',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(server.violations).toEqual([]);
    expect(server.requests[0]?.params).toEqual({
      name: 'pkg',
      platforms: ['debian-12', 'alpine-3'],
      scripts: {
        'debian-12': 'apt build https://example.org/x.git for debian-12\n',
        'alpine-3': 'build https://example.org/x.git\n',
      },
      template: { name: 'pkg', vars: { REPO: 'https://example.org/x.git' } },
      schedule: null,
    });
    expect(r.stdout).toBe('scheduled pkg from template pkg (created), next run: on demand\n');
  });

  it.each([
    [[], /give --script FILE or --template NAME/],
    [['--var', 'A=b', '--script', 'x'], /--var needs --template NAME/],
    [['--template', 't', '--script', 'x'], /--script.*cannot be used with.*--template/],
    [['--template', 'no-such-template'], /no template no-such-template in /],
  ])('schedule %j is a usage error, before any connection', async (extra, message) => {
    const r = await run('http://127.0.0.1:9', 'schedule', 'j', '--platform', 'p', ...extra);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it.each([
    [['--period', 'daily'], '@daily'],
    [['--period', 'never'], null],
    [[], null],
  ])('maps %j to schedule %j', async (extra, expected) => {
    const server = await start({
      handler: (req) => ({ job: makeJob({ name: (req.params as JobSpecInput).name }), created: false }),
    });
    const r = await run(server, 'schedule', 'j', '--platform', 'p', '--script', await script(), ...extra);
    expect(r.code).toBe(0);
    expect((server.requests[0]?.params as JobSpecInput).schedule).toBe(expected);
    expect(r.stdout).toBe('scheduled j (updated), next run: on demand\n');
  });
});

describe('observe', () => {
  it('prints the replay then the live console, and exits 1 on a failed run', async () => {
    const server = await start({
      handler: (req, conn) => {
        if (req.method !== 'observe') throw new ProtocolError(ErrorCode.Internal, 'unexpected');
        conn.afterResponse(() => {
          conn.event(1, { kind: 'console', data: 'replayed line\n' });
          setTimeout(() => {
            conn.event(1, { kind: 'console', data: 'live line\n' });
            conn.event(1, { kind: 'end', run: finishedRun(2) });
          }, 100);
        });
        return { sub: 1, run: runningRun() };
      },
    });
    const r = await run(server, 'observe', 'hello/7');
    expect(r.stdout).toBe('replayed line\nlive line\n');
    expect(r.stderr).toBe('hello/7 on debian-12: exited 2 (failed) in 1.2s\n');
    expect(r.code).toBe(1);
    expect(server.requests[0]).toMatchObject({ method: 'observe', params: { run: 'hello/7', console: true } });
  });

  it('prints JSON lines with --json that end with the result', async () => {
    const server = await start({
      handler: (_req, conn) => {
        conn.afterResponse(() => {
          conn.event(1, { kind: 'console', data: 'ok\n' });
          conn.event(1, { kind: 'end', run: finishedRun(0) });
        });
        return { sub: 1, run: runningRun() };
      },
    });
    const r = await run(server, 'observe', RUN_ID, '--json');
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.kind)).toEqual(['console', 'end', 'result']);
    expect(lines[2]).toMatchObject({ exitCode: 0, run: { state: 'succeeded' } });
  });

  it('observe-latest exits 3 when there is no run', async () => {
    const server = await start({ handler: () => null });
    const r = await run(server, 'observe-latest', '--job', 'hello');
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('builder-client: no run of job hello found\n');
  });

  it('logs without --follow stops once a running run has replayed', async () => {
    const server = await start({
      handler: (req, conn) => {
        if (req.method === 'unobserve') return {};
        conn.afterResponse(() => conn.event(1, { kind: 'console', data: 'so far\n' }));
        return { sub: 1, run: runningRun() };
      },
    });
    const r = await run(server, 'logs', 'hello/7');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('so far\n');
    expect(server.requests.map((q) => q.method)).toEqual(['observe', 'unobserve']);
  });
});

describe('execute', () => {
  it('prints one line per run and follows several with platform prefixes', async () => {
    const runs = [makeRun({ platform: 'a' }), makeRun({ id: RUN_ID_2, number: 8, platform: 'b' })];
    const server = await start({
      handler: (req, conn) => {
        if (req.method === 'execute') return { runs };
        const id = (req.params as { run: string }).run;
        const base = runs.find((r) => r.id === id) ?? runs[0]!;
        const sub = id === RUN_ID ? 1 : 2;
        conn.afterResponse(() => {
          conn.event(sub, { kind: 'console', data: `out of ${base.platform}\npartial` });
          conn.event(sub, { kind: 'end', run: finishedRun(0, { ...base, state: 'succeeded' }) });
        });
        return { sub, run: base };
      },
    });
    const r = await run(server, 'execute', 'hello', '--platform', 'a,b', '--param', 'X=1', '--next', '--follow');
    expect(r.code).toBe(0);
    expect(server.requests[0]?.params).toEqual({
      name: 'hello',
      platforms: ['a', 'b'],
      params: { X: '1' },
      next: true,
    });
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 2)).toEqual([`hello/7 a queued ${RUN_ID}`, `hello/8 b queued ${RUN_ID_2}`]);
    expect(lines.slice(2).sort()).toEqual(['[a] out of a', '[a] partial', '[b] out of b', '[b] partial']);
  });
});

describe('--json documents', () => {
  it('jobs, runs and info print the server result as JSON', async () => {
    const queued = makeRun({ waiting: 'no worker for debian-12 online' });
    const server = await start({
      handler: (req) => {
        if (req.method === 'jobs') return [makeJob()];
        if (req.method === 'runs') return [queued];
        return {
          version: '0.1.0',
          now: 1_700_000_005_000,
          jobs: 1,
          workers: [],
          platforms: [],
          queued: [queued],
          running: [],
        };
      },
    });
    for (const verb of ['jobs', 'runs', 'info']) {
      const r = await run(server, verb, '--json');
      expect(r.code).toBe(0);
      expect(() => JSON.parse(r.stdout) as unknown).not.toThrow();
    }
    const human = await run(server, 'runs', 'hello', '--state', 'queued', '--limit', '5');
    expect(human.stdout).toMatch(/^RUN +PLATFORM +STATE/);
    expect(human.stdout).toContain('no worker for debian-12 online');
    expect(server.requestsFor('runs').at(-1)?.params).toEqual({ job: 'hello', state: 'queued', limit: 5 });
  });
});
