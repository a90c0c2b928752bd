/**
 * Who may write to a run, tried the way an attacker with some other worker token would, and
 * secrets, tried the way a leaky job would: through real server and worker processes.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb } from '../packages/server/src/store/db.ts';
import { Cluster, waitFor } from './harness.ts';
import { outputMessage, Peer } from './wire.ts';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('trust: only the worker holding a run writes to it', () => {
  let c: Cluster;
  const peers: Peer[] = [];
  const open = async () => {
    const p = await Peer.open(c.url);
    peers.push(p);
    return p;
  };
  const as = (name: string, running: unknown[] = []) => ({
    worker: { name, platform: 'debian-12', labels: [], capacity: 1, executor: 'host', running },
  });
  const errorOf = (m: { type: string; error?: unknown }) => m.error as { code: string; message: string };

  beforeAll(async () => {
    c = await Cluster.start();
    c.startWorker('w-real');
    await c.waitForWorkers('w-real');
  }, 30_000);
  afterAll(async () => {
    for (const p of peers) p.close();
    await c?.stop();
  });

  it('a worker token names its worker: token create without --name is a usage error, token list says what each may be', async () => {
    const r = c.token('admin'); // made fine: only worker tokens name a worker
    expect(r).toMatch(/^bld_admin_/);
    const { execFileSync, spawnSync } = await import('node:child_process');
    const bin = join(import.meta.dirname, '../packages/server/bin/builder-server.js');
    const bad = spawnSync(process.execPath, [bin, 'token', 'create', '--data-dir', c.dataDir, '--role', 'worker']);
    expect(bad.status).toBe(2);
    expect(String(bad.stderr)).toMatch(/a worker token names its worker: add --name NAME/);
    const list = String(execFileSync(process.execPath, [bin, 'token', 'list', '--data-dir', c.dataDir]));
    expect(list).toMatch(/\tworker\tworker w-real\t/);
    expect(list).toMatch(/\tworker\tworker \*\t/);
  });

  it('impersonation, re-attach, forged output/started/finished and a foreign artifact PUT are refused; the run ends as the real worker made it', async () => {
    const release = join(c.dir, 'victim.release');
    await c.schedule(
      'victim',
      `for i in 1 2 3 4 5; do echo "real $i"; done
while [ ! -e ${release} ]; do sleep 0.05; done
for i in 6 7 8 9 10; do echo "real $i"; done
echo 'the real build' > "$BUILDER_OUTPUT/app.bin"
`,
    );
    const following = c.clientProc(['execute', 'victim', '--follow']);
    await waitFor(() => following.stdout().includes('real 5'), 'the victim run to print');
    const run = await c.run('victim/1');
    expect(run.worker).toBe('w-real');
    const held = [{ runId: run.id, attempt: 1, lastSeq: 5, finished: false }];
    const evilToken = c.workerToken('w-evil');

    // 1. hello under the victim's name with another worker's token: FORBIDDEN, closed
    const imp = await open();
    const refused = await imp.hello('worker', evilToken, as('w-real', held));
    expect(errorOf(refused as never)).toMatchObject({
      code: 'FORBIDDEN',
      message: expect.stringMatching(/this token is for worker w-evil, not w-real/),
    });
    expect((await imp.closedP).code).toBe(1008);

    // 2. a worker token from before tokens named workers: refused too, with what to do
    const legacy = `bld_worker_${randomUUID()}`;
    const db = openDb(c.dataDir);
    db.prepare("INSERT INTO tokens (hash, role, name, created_at) VALUES (?, 'worker', NULL, ?)").run(
      sha(legacy),
      Date.now(),
    );
    db.close();
    const old = await open();
    expect(errorOf((await old.hello('worker', legacy, as('w-real', held))) as never)).toMatchObject({
      code: 'FORBIDDEN',
      message: expect.stringMatching(/names no worker .* token create --role worker --name w-real/),
    });

    // 3. as itself, claiming the victim's attempt: told to kill it; its writes change nothing
    const evil = await open();
    const welcome = (await evil.hello('worker', evilToken, as('w-evil', held))) as { reattach?: unknown };
    expect(welcome).toMatchObject({ type: 'welcome', reattach: [{ runId: run.id, attempt: 1, action: 'kill' }] });
    for (let seq = 6; seq <= 12; seq++) evil.send(outputMessage({ runId: run.id, attempt: 1, seq }, `forged ${seq}\n`));
    for (let seq = 6; seq <= 12; seq++) expect(await evil.next()).toMatchObject({ type: 'cancel', runId: run.id });
    evil.send({ type: 'started', runId: run.id, attempt: 1, startedAt: Date.now() });
    expect(await evil.next()).toMatchObject({ type: 'cancel', runId: run.id });
    evil.send({ type: 'rejected', runId: run.id, attempt: 1, reason: 'forged' });
    const finished = { type: 'finished', runId: run.id, attempt: 1, lastSeq: 0, finishedAt: Date.now() };
    evil.send({ ...finished, result: { kind: 'exited', code: 0 } });
    expect(await evil.next()).toMatchObject({ type: 'finished-ack', runId: run.id });
    expect((await c.run('victim/1')).state).toBe('running');

    // 4. artifacts for the victim's attempt: another worker's token, or the fleet token without
    //    (or with a wrong) attempt secret — 403 before a byte is read, nothing staged or recorded
    const url = `${c.url}/artifacts/${run.id}/1`;
    const put = (token: string, secret?: string) =>
      fetch(url, {
        method: 'PUT',
        body: Buffer.from('anything'),
        headers: {
          authorization: `Bearer ${token}`,
          ...(secret !== undefined && { 'x-builder-attempt-secret': secret }),
        },
      });
    const refusedPut = async (res: Response, why: RegExp) => {
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: string }).error).toMatch(why);
    };
    await refusedPut(await put(evilToken, 'f'.repeat(64)), /held by worker w-real: this token may not write to it/);
    await refusedPut(await put(c.tokens.worker), /attempt secret is missing/);
    await refusedPut(await put(c.tokens.worker, 'f'.repeat(64)), /attempt secret is wrong/);
    await refusedPut(await put(c.tokens.worker, 'not hex'), /attempt secret is wrong/);
    expect(readdirSync(join(c.dataDir, 'artifacts', 'tmp'))).toEqual([]);
    expect(JSON.parse((await c.client(['artifacts', 'victim/1', '--json'])).stdout).files).toEqual([]);

    // the real worker finishes: its result, its console, its file
    writeFileSync(release, '');
    expect(await following.exited).toBe(0);
    const done = await c.run('victim/1');
    expect(done).toMatchObject({ state: 'succeeded', worker: 'w-real' });
    const log = (await c.client(['logs', 'victim/1'])).stdout;
    expect(log.startsWith(Array.from({ length: 10 }, (_, i) => `real ${i + 1}\n`).join(''))).toBe(true);
    expect(log).not.toContain('forged');
    const file = await fetch(`${c.url}/job/victim/run/1/artifacts/app.bin`);
    expect(await file.text()).toBe('the real build\n');

    // and each refusal was logged, naming who tried and who holds the run
    const serverLog = c.server!.output();
    expect(serverLog).toMatch(/"event":"ws.hello_refused".*"code":"FORBIDDEN".*"worker":"w-real"/);
    expect(serverLog).toMatch(/"event":"run.write_refused".*"worker":"w-evil".*"holder":"w-real"/);
    expect(serverLog).toMatch(/"event":"artifacts.refused_writer".*"worker":"w-real"/);
  });
});

describe('secrets: only the job sees them', () => {
  let c: Cluster;
  const value = 'hunter2-very-secret-value';
  const own = 'the-job-own-s3cr3t';

  beforeAll(async () => {
    c = await Cluster.start();
    c.startWorker('w1');
    await c.waitForWorkers('w1');
  }, 30_000);
  afterAll(async () => {
    await c?.stop();
  });

  it('set from stdin (never argv), listed by name, given to the job, masked everywhere it could show', async () => {
    const set = await c.client(['secret', 'set', 'DEPLOY_KEY'], { stdin: `${value}\n` });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toBe('secret DEPLOY_KEY set for all jobs\n');
    expect((await c.client(['secret', 'set', 'OTHER'], { stdin: `${own}-other` })).code).toBe(0);
    const empty = await c.client(['secret', 'set', 'EMPTY'], { stdin: '' });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/the value of EMPTY is empty/);
    expect((await c.client(['secret', 'list'], { token: c.tokens.read })).code).toBe(4);

    await c.schedule(
      'leaky',
      `echo "plain: $DEPLOY_KEY"
printf 'split: %s' "$(printf %s "$DEPLOY_KEY" | cut -c1-8)"; sleep 0.4; printf '%s\\n' "$(printf %s "$DEPLOY_KEY" | cut -c9-)"
echo "other: $OTHER" >&2
printf %s "$DEPLOY_KEY" | sha256sum > "$BUILDER_OUTPUT/seen.sha"
`,
      ['--secret', 'DEPLOY_KEY', '--secret', 'OTHER'],
    );
    // the job's own value wins over the one for all jobs
    const jobOwn = await c.client(['secret', 'set', 'DEPLOY_KEY', '--job', 'leaky'], { stdin: own });
    expect(jobOwn.stdout).toBe('secret DEPLOY_KEY set for job leaky\n');
    const list = await c.client(['secret', 'list', '--json']);
    const entries = JSON.parse(list.stdout) as { name: string; job: string | null }[];
    expect(entries.map((e) => `${e.name}@${e.job}`).sort()).toEqual([
      'DEPLOY_KEY@leaky',
      'DEPLOY_KEY@null',
      'OTHER@null',
    ]);
    expect(list.stdout).not.toContain(value);
    expect(list.stdout).not.toContain(own);

    const r = await c.client(['execute', 'leaky', '--follow']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('plain: ***\n');
    expect(r.stdout).toContain('split: ***\n');
    expect(r.stdout + r.stderr).toContain('other: ***\n');
    // the job saw the real value (its job's own)
    const seen = await fetch(`${c.url}/job/leaky/run/1/artifacts/seen.sha`);
    expect(await seen.text()).toBe(`${sha(own)}  -\n`);

    const places = [
      r.stdout + r.stderr,
      (await c.client(['logs', 'leaky/1'])).stdout,
      (await c.client(['info', '--json'])).stdout,
      (await c.client(['jobs', '--json'])).stdout,
      (await c.client(['runs', 'leaky', '--json'])).stdout,
      (await c.client(['info', 'leaky/1', '--json'])).stdout,
      (await c.client(['info', 'leaky'])).stdout,
      ...(await Promise.all(
        [
          '/job/leaky/run/1',
          '/api/job/leaky/run/1',
          '/job/leaky',
          '/api/job/leaky',
          '/job/leaky/run/1/console.txt',
          '/feed.atom',
          '/job/leaky/feed.atom',
          '/',
        ].map(async (path) => (await fetch(`${c.url}${path}`)).text()),
      )),
      c.server!.output(),
      c.workers.get('w1')!.output(),
    ];
    for (const text of places) {
      expect(text).not.toContain(value);
      expect(text).not.toContain(own);
      expect(text).not.toContain(own.slice(0, 8)); // nor the first half of the split print
    }
    expect(places[1]).toContain('plain: ***');
    expect(JSON.parse((await c.client(['jobs', '--json'])).stdout)[0]).toMatchObject({
      name: 'leaky',
      secrets: ['DEPLOY_KEY', 'OTHER'],
    });
  });

  it('a job asking for a secret nobody set ends in error, without running', async () => {
    await c.schedule('needy', 'echo ran > "$BUILDER_OUTPUT/ran"', ['--secret', 'NOT_THERE']);
    const r = await c.client(['execute', 'needy', '--follow']);
    expect(r.code).toBe(1);
    const run = await c.run('needy/1');
    expect(run.state).toBe('error');
    expect(JSON.stringify(run.result)).toMatch(/secret NOT_THERE not set on the server/);
    const rm = await c.client(['secret', 'rm', 'NOT_THERE']);
    expect(rm.code).toBe(3);
    expect(rm.stderr).toMatch(/no secret NOT_THERE for all jobs/);
  });

  it('the data dir and database are readable by their owner only', () => {
    expect(statSync(c.dataDir).mode & 0o777).toBe(0o700);
    for (const f of ['builder.sqlite', 'builder.sqlite-wal']) {
      expect(statSync(join(c.dataDir, f)).mode & 0o077, f).toBe(0);
    }
  });
});
