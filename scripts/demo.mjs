#!/usr/bin/env node
// The README's first command: a server, a local worker and a job that builds and shows its result.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, createToken, startServerProcess } from './local-server.mjs';

const dir = mkdtempSync(join(tmpdir(), 'builder-demo-'));
const children = [];
const say = (text) => process.stdout.write(`\x1b[1m» ${text}\x1b[0m\n`);

function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

const admin = createToken(dir, 'admin');
const workerToken = createToken(dir, 'worker', 'local');

say('starting builder-server');
const { server, url } = await startServerProcess(dir);
children.push(server);
say(`server at ${url}; starting a local worker (platform demo, host executor, capacity 2)`);
const worker = spawn(
  process.execPath,
  [
    bin('worker'),
    '--remote',
    url,
    '--token',
    workerToken,
    '--platform',
    'demo',
    '--name',
    'local',
    '--capacity',
    '2',
    '--executor',
    'host',
  ],
  { stdio: 'ignore' },
);
children.push(worker);

const client = (...args) => {
  const r = spawn(process.execPath, [bin('client'), '--remote', url, '--token', admin, ...args], { stdio: 'inherit' });
  return new Promise((ok) => r.on('exit', (code) => ok(code)));
};

const script = join(dir, 'build.sh');
writeFileSync(
  script,
  [
    '#!/bin/sh',
    'set -e',
    'echo "building revision $REV on $BUILDER_PLATFORM (run $BUILDER_JOB/$BUILDER_RUN)"',
    'for step in configure compile test; do echo "\\033[32m==>\\033[0m $step"; sleep 0.2; done',
    'echo "hello from builder" > "$BUILDER_OUTPUT/hello.txt"',
    'echo done',
    '',
  ].join('\n'),
);

say('builder-client schedule hello --platform demo --script build.sh --cron "0 3 * * *" --tz Europe/Berlin');
await client(
  'schedule',
  'hello',
  '--platform',
  'demo',
  '--script',
  script,
  '--cron',
  '0 3 * * *',
  '--tz',
  'Europe/Berlin',
);
say('builder-client execute hello --param REV=abc123 --follow');
const status = await client('execute', 'hello', '--param', 'REV=abc123', '--follow');
say('builder-client runs hello');
await client('runs', 'hello');
say('builder-client artifacts hello/1');
await client('artifacts', 'hello/1');
const page = await fetch(`${url}/job/hello/run/1`);
const html = await page.text();
say(
  `GET ${url}/job/hello/run/1 → ${page.status}, ${html.includes('hello.txt') ? 'lists hello.txt with its SHA-256' : 'no artifact listed'}`,
);
const badge = await (await fetch(`${url}/badge/hello.svg`)).text();
say(
  `badge: ${/passing|failing|running|unknown/.exec(badge)?.[0] ?? '?'}; the run exited with status ${status}; stopping`,
);
process.exit(status ?? 1);
