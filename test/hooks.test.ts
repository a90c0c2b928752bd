/**
 * Push hooks and watching a commit, through real builder-server / builder-worker / builder-client
 * processes: a repository made here and served by `git daemon` on loopback, a job with that
 * source on two platforms (a host worker each), each forge's push delivery (the documented payload
 * and signature) queuing a run of the pushed commit, forged and stray deliveries refused or
 * ignored, redeliveries answered with the same runs (also after a restart), contrib/post-receive
 * in a bare repository pushed to for real, and `watch --commit` / `status --commit`.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORGES, type Forge } from '../packages/server/src/hooks/forges.ts';
import { forgeHeaders, payload, type PushSpec } from '../packages/server/src/test-support/forge-payloads.ts';
import { git, gitDaemon } from '../packages/worker/src/test-support/git.ts';
import { BIN, Cluster, waitFor, type CliResult } from './harness.ts';

const POST_RECEIVE = resolve(import.meta.dirname, '..', 'contrib', 'post-receive');
// fails when the commit has a file named FAIL: one repository gives both outcomes
const SCRIPT = 'cd "$BUILDER_SOURCE" && echo "built $BUILDER_COMMIT" && test ! -e FAIL\n';

interface HookAnswer {
  status: number;
  body: {
    ok: boolean;
    queued?: boolean;
    redelivery?: boolean;
    ignored?: string;
    error?: string;
    commit?: string;
    runs?: { id: string; number: number; platform: string; url: string }[];
  };
}

describe('push hooks and watching a commit', () => {
  let c: Cluster;
  let work: string;
  let url: string;
  let daemon: { stop(): void } | undefined;
  let secret: string;
  let n = 0;

  /** A new commit on the branch checked out in the working repository; its SHA. */
  const commit = (opts: { fail?: boolean } = {}): string => {
    writeFileSync(join(work, `part-${++n}`), `${n}\n`);
    if (opts.fail) writeFileSync(join(work, 'FAIL'), '');
    else git(work, 'rm', '-q', '--ignore-unmatch', 'FAIL');
    git(work, 'add', '-A');
    git(work, 'commit', '-q', '-m', `part ${n}`);
    return git(work, 'rev-parse', 'HEAD');
  };

  const deliver = async (
    job: string,
    forge: Forge,
    spec: PushSpec,
    opts: { delivery?: string; event?: string; secret?: string; body?: string } = {},
  ): Promise<HookAnswer> => {
    const body = opts.body ?? JSON.stringify(payload(forge, spec));
    const headers = forgeHeaders(forge, body, opts.secret ?? secret, opts);
    const res = await fetch(`${c.url}/hooks/${job}`, { method: 'POST', headers, body });
    return { status: res.status, body: (await res.json()) as HookAnswer['body'] };
  };

  const runsOf = async (job: string) =>
    JSON.parse((await c.client(['runs', job, '--json', '--limit', '1000'])).stdout) as {
      number: number;
      state: string;
      ref: string | null;
      commit: string | null;
      platform: string;
    }[];

  /** builder-client in `cwd` (watch/status resolve HEAD there); killed by the cluster's stop. */
  const clientIn = (cwd: string, args: string[]) => {
    const child = spawn(process.execPath, [BIN.client, ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BUILDER_REMOTE: c.url, BUILDER_TOKEN: c.tokens.admin },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<CliResult>((ok) => child.on('exit', (code) => ok({ code, stdout, stderr })));
    return { child, exited, stderr: () => stderr };
  };
  const procs: ReturnType<typeof clientIn>[] = [];

  beforeAll(async () => {
    c = await Cluster.start();
    work = join(c.dir, 'repo');
    git(c.dir, 'init', '-q', '-b', 'main', work);
    commit();
    daemon = await gitDaemon(c.dir, 'repo');
    url = daemon.url;
    c.startWorker('w-deb', { platform: 'debian-12' });
    c.startWorker('w-alp', { platform: 'alpine-3' });
    await c.waitForWorkers('w-deb', 'w-alp');
    await c.schedule('app', SCRIPT, ['--platform', 'alpine-3', '--source-git', url, '--source-ref', 'main']);
    const set = await c.client(['hook', 'set', 'app']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stderr).toContain(`URL: ${c.url}/hooks/app`);
    secret = set.stdout.trim();
    expect(secret).toMatch(/^[0-9a-f]{48}$/);
  }, 60_000);
  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    daemon?.stop();
    await c?.stop();
  });

  it.each(FORGES)(
    "%s: a signed push queues the pushed commit on every platform, and it is what's built",
    async (forge) => {
      const sha = commit();
      const before = (await runsOf('app')).length;
      const r = await deliver('app', forge, { ref: 'refs/heads/main', after: sha });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body).toMatchObject({ queued: true, redelivery: false, commit: sha });
      expect(r.body.runs!.map((x) => x.platform).sort()).toEqual(['alpine-3', 'debian-12']);
      for (const run of r.body.runs!) {
        const w = await c.client(['watch', `app/${run.number}`]);
        expect(w.code, w.stdout + w.stderr).toBe(0);
        expect(await c.run(`app/${run.number}`)).toMatchObject({
          state: 'succeeded',
          ref: sha,
          commit: sha,
          trigger: 'push',
        });
      }
      expect((await runsOf('app')).length).toBe(before + 2);
    },
    60_000,
  );

  it('refuses forged or missing signatures (logged), unknown jobs, jobs without a hook and non-JSON', async () => {
    const sha = commit();
    const before = (await runsOf('app')).length;
    for (const forge of FORGES) {
      const forged = await deliver(
        'app',
        forge,
        { ref: 'refs/heads/main', after: sha },
        { secret: 'not-the-secret-at-all' },
      );
      expect(forged.status).toBe(401);
      expect(forged.body.error).toMatch(/header is wrong: it must prove the job's hook secret/);
    }
    const unsigned = await fetch(`${c.url}/hooks/app`, {
      method: 'POST',
      headers: { 'x-github-event': 'push', 'x-github-delivery': 'd-unsigned', 'content-type': 'application/json' },
      body: JSON.stringify(payload('github', { ref: 'refs/heads/main', after: sha })),
    });
    expect(unsigned.status).toBe(401);
    expect(await unsigned.text()).toContain('the x-hub-signature-256 header is missing');
    await waitFor(() => c.server!.output().includes('"event":"hook.refused"'), 'the refusal in the log');
    const logged = c
      .server!.output()
      .split('\n')
      .filter((l) => l.includes('"hook.refused"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged.map((l) => l.forge).sort()).toEqual(['forgejo', 'github', 'github', 'gitlab', 'gitea'].sort());
    expect(logged[0]).toMatchObject({ job: 'app', hookEvent: 'push', remote: '127.0.0.1' });
    expect((await runsOf('app')).length).toBe(before);

    await c.schedule('plain', 'true\n');
    const sourceless = await c.client(['hook', 'set', 'plain']);
    expect(sourceless.code).toBe(2);
    expect(sourceless.stderr).toContain(
      'job plain has no source: a push hook queues the pushed commit of its repository',
    );
    await c.schedule('nohook', SCRIPT, ['--source-git', url]);
    const none = await deliver('nohook', 'github', { ref: 'refs/heads/main', after: sha });
    expect(none.status).toBe(404);
    expect(none.body.error).toBe('job nohook has no push hook: give it a secret with builder-client hook set nohook');
    expect((await deliver('absent', 'github', { ref: 'refs/heads/main', after: sha })).status).toBe(404);

    const notJson = await deliver('app', 'gitea', { ref: 'refs/heads/main', after: sha }, { body: 'payload=%7B%7D' });
    expect(notJson.status).toBe(400);
    expect(notJson.body.error).toMatch(
      /^the body is not JSON \(.*\): set the webhook's content type to application\/json$/,
    );
    // refused on its declared length, before the body is read
    const tooBig = await declaring(`${c.url}/hooks/app`, 5 << 20);
    expect(tooBig.status).toBe(413);
    expect(tooBig.text).toContain('the body is longer than 4194304 bytes');
    const noForge = await fetch(`${c.url}/hooks/app`, { method: 'POST', body: '{}' });
    expect(noForge.status).toBe(400);
    expect(await noForge.text()).toContain('not a webhook from a known forge');
    expect((await runsOf('app')).length).toBe(before);
  }, 60_000);

  it('ignores pings, tags, deletions and branches the job does not build; --branch chooses them', async () => {
    const sha = commit();
    const before = (await runsOf('app')).length;
    const ping = await deliver('app', 'github', { ref: 'refs/heads/main', after: sha }, { event: 'ping' });
    expect(ping).toEqual({ status: 202, body: { ok: true, queued: false, ignored: 'a ping event is not a push' } });
    const tag = await deliver('app', 'gitlab', { ref: 'refs/tags/v1', after: sha }, { event: 'Tag Push Hook' });
    expect(tag.status).toBe(202);
    expect(tag.body.ignored).toBe('refs/tags/v1 is a tag push: only branch pushes queue runs');
    const gone = await deliver('app', 'gitea', { ref: 'refs/heads/main', after: sha, deleted: true });
    expect(gone.body.ignored).toBe('refs/heads/main was deleted: nothing to build');
    const other = await deliver('app', 'github', { ref: 'refs/heads/topic', after: sha });
    expect(other.status).toBe(202);
    expect(other.body.ignored).toBe('branch topic is not one job app builds on push (main)');
    expect((await runsOf('app')).length).toBe(before);

    // a job of its own with chosen branches (and its own secret, read from stdin)
    await c.schedule('topics', SCRIPT, ['--source-git', url, '--source-ref', 'main']);
    const own = 'topics-secret-0123456789';
    const set = await c.client(['hook', 'set', 'topics', '--branch', 'topic/*', '--secret-stdin'], {
      stdin: `${own}\n`,
    });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toBe('');
    expect(set.stderr).toContain('pushes to topic/* queue runs');
    expect((await deliver('topics', 'forgejo', { ref: 'refs/heads/main', after: sha }, { secret: own })).status).toBe(
      202,
    );
    const ok = await deliver('topics', 'forgejo', { ref: 'refs/heads/topic/a', after: sha }, { secret: own });
    expect(ok.status).toBe(201);
    const list = await c.client(['hook', 'list']);
    expect(list.stdout).toMatch(/^app\t\(source ref\)\t/m);
    expect(list.stdout).toMatch(/^topics\ttopic\/\*\t/m);
    expect(list.stdout).not.toContain(own);
    expect(list.stdout).not.toContain(secret);
    // the job page says where the hook is and what it builds, never its secret
    const page = await (await fetch(`${c.url}/job/topics`)).text();
    expect(page).toMatch(
      /<dd id="job-hook">\s*<code>[^<]*\/hooks\/topics<\/code>, builds pushes to\s*<code>topic\/\*<\/code>/,
    );
    expect(page).not.toContain(own);
    const rm = await c.client(['hook', 'rm', 'topics']);
    expect(rm.code, rm.stderr).toBe(0);
    expect(
      (await deliver('topics', 'forgejo', { ref: 'refs/heads/topic/a', after: sha }, { secret: own })).status,
    ).toBe(404);
  }, 60_000);

  it('answers a redelivery with the same runs and queues nothing, also after a server restart', async () => {
    const sha = commit();
    const first = await deliver('app', 'gitlab', { ref: 'refs/heads/main', after: sha }, { delivery: 'redo-1' });
    expect(first.status).toBe(201);
    const count = (await runsOf('app')).length;
    const again = await deliver('app', 'gitlab', { ref: 'refs/heads/main', after: sha }, { delivery: 'redo-1' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ redelivery: true, commit: sha });
    expect(again.body.runs).toEqual(first.body.runs);

    await c.killServer('SIGKILL');
    await c.startServer();
    const afterRestart = await deliver('app', 'gitlab', { ref: 'refs/heads/main', after: sha }, { delivery: 'redo-1' });
    expect(afterRestart.status).toBe(200);
    expect(afterRestart.body.runs).toEqual(first.body.runs);
    expect((await runsOf('app')).length).toBe(count);
    // the same id from another forge is another delivery
    const github = await deliver('app', 'github', { ref: 'refs/heads/main', after: sha }, { delivery: 'redo-1' });
    expect(github.status).toBe(201);
    await c.waitForWorkers('w-deb', 'w-alp');
    for (const run of [...first.body.runs!, ...github.body.runs!]) {
      expect((await c.client(['watch', `app/${run.number}`])).code).toBe(0);
    }
  }, 90_000);

  it('contrib/post-receive: a real push to a bare repository queues a run of the pushed commit', async () => {
    const bare = join(c.dir, 'served.git');
    git(c.dir, 'init', '-q', '--bare', '-b', 'main', bare);
    copyFileSync(POST_RECEIVE, join(bare, 'hooks', 'post-receive'));
    chmodSync(join(bare, 'hooks', 'post-receive'), 0o755);
    git(bare, 'config', 'builder.remote', c.url);
    git(bare, 'config', 'builder.job', 'served');
    git(bare, 'config', 'builder.secret', 'served-secret-0123456789');
    // the job builds from the bare repository the push lands in
    await c.schedule('served', SCRIPT, [
      '--platform',
      'alpine-3',
      '--source-git',
      `file://${bare}`,
      '--source-ref',
      'main',
    ]);
    const set = await c.client(['hook', 'set', 'served', '--secret-stdin'], { stdin: 'served-secret-0123456789' });
    expect(set.code, set.stderr).toBe(0);

    const sha = commit();
    const push = await pushOutput(work, bare, 'HEAD:refs/heads/main');
    expect(push).toContain(`remote: builder: served: main at ${sha.slice(0, 12)} queued: `);
    const runs = await runsOf('served');
    expect(runs.map((r) => [r.platform, r.ref]).sort()).toEqual([
      ['alpine-3', sha],
      ['debian-12', sha],
    ]);
    const status = clientIn(work, ['status', '--commit', 'HEAD', '--job', 'served', '--json']);
    const st = await status.exited;
    expect(st.code, st.stderr).toBe(0);
    expect((JSON.parse(st.stdout) as { job: string }[]).map((r) => r.job)).toEqual(['served', 'served']);

    // what the pusher sees: the runs queued, and a branch the job does not build
    const next = commit();
    const seen = await pushOutput(work, bare, 'HEAD:refs/heads/main');
    expect(seen).toMatch(
      new RegExp(
        `remote: builder: served: main at ${next.slice(0, 12)} queued: ${c.url}/job/served/run/\\d+ ${c.url}/job/served/run/\\d+`,
      ),
    );
    const topic = await pushOutput(work, bare, 'HEAD:refs/heads/topic');
    expect(topic).toContain(
      'remote: builder: served: not built: branch topic is not one job served builds on push (main)',
    );
    for (const r of await runsOf('served')) {
      expect((await c.client(['watch', `served/${r.number}`])).code).toBe(0);
      expect(await c.run(`served/${r.number}`)).toMatchObject({ state: 'succeeded' });
    }
    expect((await runsOf('served')).map((r) => r.commit).sort()).toEqual([next, next, sha, sha].sort());
  }, 90_000);

  it('watch --commit HEAD waits for the run across a server restart and exits 0; 1 when a platform failed', async () => {
    const sha = commit();
    const watch = clientIn(work, ['watch', '--job', 'app', '--commit', 'HEAD', '--give-up', '60']);
    procs.push(watch);
    await waitFor(
      () => watch.stderr().includes(`no run of commit ${sha.slice(0, 12)} of job app yet`),
      'watch to wait',
    );
    await c.killServer('SIGKILL');
    await c.startServer();
    await c.waitForWorkers('w-deb', 'w-alp');
    expect((await deliver('app', 'github', { ref: 'refs/heads/main', after: sha })).status).toBe(201);
    const w = await watch.exited;
    expect(w.code, w.stdout + w.stderr).toBe(0);
    expect(w.stderr).toMatch(new RegExp(`commit ${sha}: app/\\d+ \\(alpine-3\\), app/\\d+ \\(debian-12\\)`));
    expect(w.stdout.match(/^app\/\d+: exited 0 \(succeeded\)$/gm)).toHaveLength(2);

    const bad = commit({ fail: true });
    expect((await deliver('app', 'gitea', { ref: 'refs/heads/main', after: bad })).status).toBe(201);
    const failed = clientIn(work, ['watch', '--job', 'app', '--commit', bad.slice(0, 8)]);
    procs.push(failed);
    const f = await failed.exited;
    expect(f.code, f.stdout + f.stderr).toBe(1);
    expect(f.stdout.match(/^app\/\d+: exited 1 \(failed\)$/gm)).toHaveLength(2);

    // status: every run of a commit, by a short SHA outside any checkout too
    const st = clientIn(c.dir, ['status', '--commit', bad.slice(0, 10)]);
    const s = await st.exited;
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toMatch(/^RUN\s+PLATFORM\s+STATE/);
    expect(s.stdout.match(/^app\/\d+\s+\S+\s+failed/gm)).toHaveLength(2);
    const none = clientIn(c.dir, ['status', '--commit', 'abcdef12']);
    const ns = await none.exited;
    expect(ns.code).toBe(3);
    expect(ns.stderr).toContain('no runs of commit abcdef12');
    const outside = clientIn(c.dir, ['watch', '--commit', 'HEAD']);
    const o = await outside.exited;
    expect(o.code).toBe(2);
    expect(o.stderr).toMatch(/cannot resolve HEAD to a commit/);
  }, 120_000);

  /** A POST that declares `length` bytes and sends a few: the answer, once the server gives one. */
  function declaring(to: string, length: number): Promise<{ status: number; text: string }> {
    return new Promise((ok, fail) => {
      const req = request(to, {
        method: 'POST',
        headers: { 'x-github-event': 'push', 'content-type': 'application/json', 'content-length': String(length) },
      });
      req.on('error', fail);
      req.on('response', (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          req.destroy();
          ok({ status: res.statusCode ?? 0, text });
        });
      });
      req.write('{"ref":');
    });
  }

  /** `git push` in `cwd`; what it printed (the hook's lines come as `remote: …`). */
  async function pushOutput(cwd: string, to: string, refspec: string): Promise<string> {
    const child = spawn('git', ['push', to, refspec], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((ok) => child.on('exit', ok));
    expect(code, out).toBe(0);
    return out;
  }
});
