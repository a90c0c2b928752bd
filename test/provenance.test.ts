/**
 * The environment on record, compare, rebuilds and signed provenance, through real builder-server,
 * builder-worker (host executor) and builder-client processes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preAuthEncoding } from '@builder/protocol';
import { git } from '../packages/worker/src/test-support/git.ts';
import { Cluster } from './harness.ts';

describe('reproducible builds and provenance (host executor)', () => {
  let c: Cluster;
  const get = async (path: string, accept = 'application/json') => {
    const res = await fetch(`${c.url}${path}`, { headers: { accept } });
    return { status: res.status, text: await res.text() };
  };
  const json = async (path: string) => JSON.parse((await get(path)).text);

  beforeAll(async () => {
    c = await Cluster.start();
    c.startWorker('w1');
    c.startWorker('w2');
    await c.waitForWorkers('w1', 'w2');
    await c.schedule(
      'repro',
      'cd "$BUILDER_OUTPUT" && echo hello > hello.txt && mkdir -p sub && echo same > sub/b.txt',
    );
    await c.schedule('stamp', 'cd "$BUILDER_OUTPUT" && echo same > fixed.txt && date +%s%N > stamp.txt');
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('records where a run ran and shows it on the run page and in JSON', async () => {
    const r = await c.client(['execute', 'repro', '--follow']);
    expect(r.code, r.stderr).toBe(0);
    const page = await json('/api/job/repro/run/1');
    const env = page.environment;
    expect(env.worker).toBe(page.run.worker);
    expect(env.executor).toBe('host');
    expect(env.kernel).toContain(execFileSync('uname', ['-r']).toString().trim());
    expect(env.builderVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(env.base).toBeUndefined();
    const html = (await get('/job/repro/run/1', 'text/html')).text;
    expect(html).toContain('<h2 id="environment-heading">Environment</h2>');
    expect(html).toContain(`${env.worker} (host executor)`);
    expect(html).toContain('none: the job ran on the worker’s host');
  });

  it('rebuilds a run on another worker and says it is reproducible', async () => {
    const r = await c.client(['execute', 'repro', '--rebuild', '1', '--follow']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/repro\/2 debian-12 queued \S+ \(rebuild of #1\)/);
    const one = await json('/api/job/repro/run/1');
    const two = await json('/api/job/repro/run/2');
    expect(two.run.rebuildOf).toBe(1);
    expect(two.run.trigger).toBe('rebuild');
    expect(two.run.worker).not.toBe(one.run.worker);
    expect(two.rebuild).toMatchObject({ of: 1, reproducible: true });
    const html = (await get('/job/repro/run/2', 'text/html')).text;
    expect(html).toContain('<strong>reproducible</strong>: same files as #1');

    const cmp = await c.client(['compare', 'repro', '1', '2']);
    expect(cmp.code, cmp.stderr).toBe(0);
    expect(cmp.stdout).toContain('repro #1 vs #2: reproducible (the same 2 files)');
    expect(cmp.stdout).toContain('script     same');
    expect(cmp.stdout).toContain('params     same');
    expect(cmp.stdout).toContain(`workers    ${one.run.worker} / ${two.run.worker}`);

    const job = (await get('/job/repro', 'text/html')).text;
    expect(job).toMatch(/Reproducible rebuilds: 1 of 1 made the same files/);
    expect((await json('/api/job/repro')).rebuilds).toEqual({ rebuilds: 1, reproducible: 1 });
  });

  it('reports a job with a timestamp in its file as not reproducible, naming the file', async () => {
    expect((await c.client(['execute', 'stamp', '--follow'])).code).toBe(0);
    expect((await c.client(['execute', 'stamp', '--rebuild', '1', '--follow'])).code).toBe(0);
    const two = await json('/api/job/stamp/run/2');
    expect(two.rebuild.reproducible).toBe(false);
    expect(two.rebuild.artifacts.changed.map((f: { path: string }) => f.path)).toEqual(['stamp.txt']);
    expect((await json('/api/job/stamp/run/1')).rebuilds).toEqual([{ number: 2, reproducible: false }]);
    const original = (await get('/job/stamp/run/1', 'text/html')).text;
    expect(original).toMatch(/#2<\/a>\s*\(<a\s+href="\/job\/stamp\/compare\/1\/2"\s*>differs<\/a\s*>\)/);
    const html = (await get('/job/stamp/run/2', 'text/html')).text;
    expect(html).toContain('<strong>not reproducible</strong>: 1 changed, 1 the same');
    expect(html).toContain('(stamp.txt differ)');

    const cmp = await c.client(['compare', 'stamp', '1', '2', '--json']);
    expect(cmp.code, cmp.stderr).toBe(0);
    const d = JSON.parse(cmp.stdout);
    expect(d.reproducible).toBe(false);
    expect(d.artifacts.changed).toHaveLength(1);
    expect(d.artifacts.changed[0].path).toBe('stamp.txt');
    expect(d.artifacts.same.map((f: { path: string }) => f.path)).toEqual(['fixed.txt']);
    const text = await c.client(['compare', 'stamp', '1', '2']);
    expect(text.stdout).toContain('stamp #1 vs #2: not the same files (1 changed, 0 added, 0 removed, 1 the same)');
    expect(text.stdout).toMatch(/ {2}changed {2}stamp\.txt [0-9a-f]{64} → [0-9a-f]{64}/);

    const page = (await get('/job/stamp/compare/1/2', 'text/html')).text;
    expect(page).toContain('<strong>not the same files</strong>: 1 changed, 1 the same');
    expect((await c.client(['compare', 'stamp', '1', '9'])).code).toBe(3);
    expect((await json('/api/job/stamp')).rebuilds).toEqual({ rebuilds: 1, reproducible: 0 });
  });

  it('serves a signed in-toto/SLSA provenance that openssl accepts with the published key', async () => {
    const res = await get('/job/repro/run/1/provenance.json');
    expect(res.status).toBe(200);
    const envelope = JSON.parse(res.text);
    expect(envelope.payloadType).toBe('application/vnd.in-toto+json');
    const body = Buffer.from(envelope.payload, 'base64');
    const statement = JSON.parse(body.toString());
    expect(statement._type).toBe('https://in-toto.io/Statement/v1');
    expect(statement.predicateType).toBe('https://slsa.dev/provenance/v1');
    const files = (await json('/api/job/repro/run/1')).artifacts as { path: string; sha256: string }[];
    expect(statement.subject).toEqual(files.map((f) => ({ name: f.path, digest: { sha256: f.sha256 } })));
    const ext = statement.predicate.buildDefinition.externalParameters;
    expect(ext).toMatchObject({ job: 'repro', platform: 'debian-12', parameters: {} });
    expect(ext.script).toContain('echo hello > hello.txt');
    expect(statement.predicate.runDetails.byproducts[0].annotations.executor).toBe('host');

    // an independent check of the signature: openssl, the DSSE pre-authentication encoding, the PEM key
    const key = await get('/provenance-key.pem', '*/*');
    expect(key.text).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    const dir = c.dir;
    writeFileSync(join(dir, 'key.pem'), key.text);
    writeFileSync(join(dir, 'pae'), preAuthEncoding(envelope.payloadType, body));
    // DSSEv1 SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII decimal
    const prefix = `DSSEv1 28 application/vnd.in-toto+json ${body.length} `;
    expect(readFileSync(join(dir, 'pae')).equals(Buffer.concat([Buffer.from(prefix), body]))).toBe(true);
    writeFileSync(join(dir, 'sig'), Buffer.from(envelope.signatures[0].sig, 'base64'));
    // openssl 3 (pkeyutl -rawin for Ed25519); .ci/run installs it as root
    if (spawnSync('sh', ['-c', 'command -v openssl']).status !== 0) {
      console.warn('openssl is not installed: the independent signature check is skipped');
    } else {
      const ok = execFileSync('openssl', [
        'pkeyutl',
        '-verify',
        '-pubin',
        '-inkey',
        join(dir, 'key.pem'),
        '-rawin',
        '-in',
        join(dir, 'pae'),
        '-sigfile',
        join(dir, 'sig'),
      ]).toString();
      expect(ok).toContain('Signature Verified Successfully');
    }
    // the same run always gets the same document
    expect((await get('/job/repro/run/1/provenance.json')).text).toBe(res.text);

    const html = (await get('/job/repro/run/1', 'text/html')).text;
    expect(html).toContain('href="/job/repro/run/1/provenance.json"');
    expect(html).toContain('href="/provenance-key.pem"');
  });

  it('verify accepts a downloaded artifact and refuses a changed byte, a changed document and a wrong key', async () => {
    const dl = join(c.dir, 'dl');
    expect((await c.client(['artifacts', 'repro/1', '--download', dl])).code).toBe(0);
    const file = join(dl, 'hello.txt');
    const one = await json('/api/job/repro/run/1');

    const good = await c.client(['verify', file, '--run', 'repro/1']);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toContain(`OK ${file}: hello.txt (SHA-256 `);
    expect(good.stdout).toContain('built by  repro run #1 on debian-12');
    expect(good.stdout).toContain(`worker    ${one.run.worker}`);
    expect(good.stdout).toContain(`time      ${new Date(one.run.startedAt).toISOString()}`);
    // without --run: the server finds the run by the file's SHA-256 (the newest: the rebuild #2)
    const found = await c.client(['verify', file, '--json']);
    expect(found.code, found.stderr).toBe(0);
    expect(JSON.parse(found.stdout)).toMatchObject({ ok: true, job: 'repro', run: 2, artifact: 'hello.txt' });

    const changed = join(c.dir, 'hello-changed.txt');
    writeFileSync(changed, 'hellO\n');
    const byte = await c.client(['verify', changed, '--run', 'repro/1']);
    expect(byte.code).toBe(1);
    expect(byte.stderr).toMatch(
      /verify failed: .*hello-changed\.txt: its SHA-256 [0-9a-f]{64} is not that of any file run repro#1 made/,
    );

    const prov = JSON.parse((await get('/job/repro/run/1/provenance.json')).text);
    const statement = JSON.parse(Buffer.from(prov.payload, 'base64').toString());
    statement.predicate.runDetails.byproducts[0].annotations.worker = 'somewhere-else';
    prov.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    writeFileSync(join(c.dir, 'forged.json'), JSON.stringify(prov));
    const forged = await c.client(['verify', file, '--run', 'repro/1', '--provenance', join(c.dir, 'forged.json')]);
    expect(forged.code).toBe(1);
    expect(forged.stderr).toContain(
      'verify failed: provenance: signature does not match: the document was changed after it was signed',
    );

    const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    writeFileSync(join(c.dir, 'other.pem'), other);
    const wrongKey = await c.client(['verify', file, '--run', 'repro/1', '--key', join(c.dir, 'other.pem')]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(
      /verify failed: provenance: signature does not match the key given: the document is signed by key [0-9a-f]{64}, the key given is [0-9a-f]{64}/,
    );

    const wrongRun = await c.client(['verify', file, '--run', 'stamp/1']);
    expect(wrongRun.code).toBe(1);
    expect(wrongRun.stderr).toContain('is not that of any file run stamp#1 made');

    const unknown = await c.client(['verify', changed]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('not a file it built');
  });
  it('rebuilds the commit the run built, not the branch as it is now', async () => {
    const repo = join(c.dir, 'repo');
    mkdirSync(repo);
    git(repo, 'init', '-q', '-b', 'main');
    const commit = (text: string) => {
      writeFileSync(join(repo, 'v'), text);
      git(repo, 'add', '-A');
      git(repo, 'commit', '-q', '-m', text);
      return git(repo, 'rev-parse', 'HEAD');
    };
    const first = commit('one\n');
    await c.schedule('fromgit', 'cp "$BUILDER_SOURCE/v" "$BUILDER_OUTPUT/v"', [
      '--source-git',
      `file://${repo}`,
      '--source-ref',
      'main',
    ]);
    expect((await c.client(['execute', 'fromgit', '--follow'])).code).toBe(0);
    const second = commit('two\n');
    expect((await c.client(['execute', 'fromgit', '--rebuild', '1', '--follow'])).code).toBe(0);
    expect((await c.client(['execute', 'fromgit', '--follow'])).code).toBe(0);
    const runs = await Promise.all([1, 2, 3].map((n) => json(`/api/job/fromgit/run/${n}`)));
    expect(runs.map((r) => r.run.commit)).toEqual([first, first, second]);
    expect(runs[1].rebuild.reproducible).toBe(true);

    const cmp = await c.client(['compare', 'fromgit', '1', '3']);
    expect(cmp.stdout).toContain(`commit     ${first} → ${second}`);
    expect(cmp.stdout).toMatch(/ {2}changed {2}v [0-9a-f]{64} → [0-9a-f]{64}/);
    const prov = JSON.parse((await get('/job/fromgit/run/1/provenance.json')).text);
    const statement = JSON.parse(Buffer.from(prov.payload, 'base64').toString());
    expect(statement.predicate.buildDefinition.externalParameters.source).toEqual({
      repository: `file://${repo}`,
      ref: 'main',
      commit: first,
    });
    expect(statement.predicate.buildDefinition.resolvedDependencies).toEqual([
      { uri: `git+file://${repo}@main`, digest: { gitCommit: first } },
    ]);
    const usage = await c.client(['execute', 'fromgit', '--rebuild', '1', '--ref', 'main']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--rebuild runs the same platform, parameters and commit again');
    expect((await c.client(['execute', 'fromgit', '--rebuild', '99'])).code).toBe(3);
  });
});
