/**
 * Run inputs and `after:` chains through real builder-server + builder-worker + builder-client
 * processes: `execute --input` sends files (each content once) that the job reads in
 * $BUILDER_INPUT, `--input-from` takes another run's artifact, the worker refuses an input whose
 * bytes do not match their SHA-256, and `after:` queues exactly one follower per success, also
 * across a server killed with SIGKILL between the success and the follower's dispatch. The chroot
 * case (root only) reads the inputs inside the sandbox.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chrootSkipReason,
  ensureRootfs,
  ROOTFS,
  ROOTFS_TIMEOUT_MS,
  TEST_ID_RANGE,
} from '../packages/worker/src/test-support/chroot-root.ts';
import { Cluster, waitFor } from './harness.ts';
import { Peer } from './wire.ts';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Reads its input and derives artifacts from it. */
const DIGEST =
  'echo "input=$BUILDER_INPUT"; ls "$BUILDER_INPUT"\n' +
  'tr a-z A-Z < "$BUILDER_INPUT/hello.txt" > "$BUILDER_OUTPUT/upper.txt"\n' +
  'sha256sum "$BUILDER_INPUT/hello.txt" | cut -d" " -f1 > "$BUILDER_OUTPUT/digest"\n';

interface RunJson {
  state: string;
  number: number;
  trigger: string;
  result: { kind: string; message?: string } | null;
  inputs: { name: string; size: number; sha256: string; from: { job: string; number: number; path: string } | null }[];
  after: { job: string; number: number } | null;
}

/** Every blob file in the server's local store. */
function blobCount(c: Cluster): number {
  const dir = join(c.dataDir, 'artifacts', 'blobs');
  if (!existsSync(dir)) return 0;
  return readdirSync(dir).reduce((n, d) => n + readdirSync(join(dir, d)).length, 0);
}

async function info(c: Cluster, ref: string): Promise<RunJson> {
  const r = await c.client(['info', ref, '--json']);
  if (r.code !== 0) throw new Error(`info ${ref}: ${r.stderr}`);
  return JSON.parse(r.stdout) as RunJson;
}

async function runsOf(c: Cluster, job: string): Promise<RunJson[]> {
  const r = await c.client(['runs', job, '--json']);
  if (r.code !== 0) throw new Error(`runs ${job}: ${r.stderr}`);
  return JSON.parse(r.stdout) as RunJson[];
}

async function artifact(c: Cluster, job: string, n: number, path: string): Promise<string> {
  const res = await fetch(`${c.url}/job/${job}/run/${n}/artifacts/${path}`);
  expect(res.status).toBe(200);
  return res.text();
}

describe('run inputs (host executor)', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await Cluster.start();
    c.startWorker('w1');
    await c.waitForWorkers('w1');
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('execute --input: the job reads the file in $BUILDER_INPUT, the run lists it with its SHA-256', async () => {
    const file = c.script('hello.txt', 'hello inputs\n');
    await c.schedule('digest', DIGEST);
    const r = await c.client(['execute', 'digest', '--input', file, '--follow']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/input=\S+\/input\n/);
    expect(r.stdout).toContain('[builder] inputs: 1 file, 13 B, SHA-256 checked');
    expect(await artifact(c, 'digest', 1, 'upper.txt')).toBe('HELLO INPUTS\n');
    expect((await artifact(c, 'digest', 1, 'digest')).trim()).toBe(sha256('hello inputs\n'));

    const run = await info(c, 'digest/1');
    expect(run.inputs).toEqual([{ name: 'hello.txt', size: 13, sha256: sha256('hello inputs\n'), from: null }]);
    expect((await c.client(['info', 'digest/1'])).stdout).toContain(
      `hello.txt  13 bytes  sha256 ${sha256('hello inputs\n')}  sent with execute`,
    );
    const page = await (await fetch(`${c.url}/job/digest/run/1`)).text();
    expect(page).toContain('<h2>Inputs</h2>');
    expect(page).toContain(sha256('hello inputs\n'));

    // the same content again is not stored twice (nor sent: the store has it)
    const blobs = blobCount(c);
    const again = await c.client(['execute', 'digest', '--input', file, '--follow']);
    expect(again.code, again.stderr).toBe(0);
    expect(blobCount(c)).toBe(blobs);
  }, 60_000);

  it('--input-from takes the latest success (or run N) of another job on the same platform', async () => {
    await c.schedule('shout', 'cat "$BUILDER_INPUT"/*\n');
    const latest = await c.client(['execute', 'shout', '--input-from', 'digest:upper.txt', '--follow']);
    expect(latest.code, latest.stderr).toBe(0);
    expect(latest.stdout).toContain('HELLO INPUTS');
    expect((await info(c, 'shout/1')).inputs).toEqual([
      {
        name: 'upper.txt',
        size: 13,
        sha256: sha256('HELLO INPUTS\n'),
        from: { job: 'digest', number: 2, platform: 'debian-12', path: 'upper.txt' },
      },
    ]);
    const numbered = await c.client([
      'execute',
      'shout',
      '--input-from',
      'digest/1:upper.txt',
      '--input-from',
      'digest/1:digest',
      '--follow',
    ]);
    expect(numbered.code, numbered.stderr).toBe(0);
    expect(numbered.stdout).toContain(sha256('hello inputs\n'));
    expect((await info(c, 'shout/2')).inputs.map((i) => i.from?.number)).toEqual([1, 1]);
  }, 60_000);

  it('refuses what cannot be an input, with exit 2 for bad arguments and 3 for what does not exist', async () => {
    const missing = await c.client(['execute', 'digest', '--input', join(c.dir, 'nope.txt')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.txt: no such file');
    const badSpec = await c.client(['execute', 'digest', '--input-from', 'digest']);
    expect(badSpec.code).toBe(2);
    expect(badSpec.stderr).toContain('expected JOB:PATH or JOB/N:PATH');

    const noJob = await c.client(['execute', 'shout', '--input-from', 'nosuch:upper.txt']);
    expect(noJob.code).toBe(3);
    expect(noJob.stderr).toContain('no job named "nosuch"');
    const noRun = await c.client(['execute', 'shout', '--input-from', 'digest/99:upper.txt']);
    expect(noRun.code).toBe(3);
    expect(noRun.stderr).toContain('job digest has no run 99');
    const noFile = await c.client(['execute', 'shout', '--input-from', 'digest/1:absent.txt']);
    expect(noFile.code).toBe(3);
    expect(noFile.stderr).toContain('run digest#1 has no artifact absent.txt');
    const noLatest = await c.client(['execute', 'shout', '--input-from', 'digest:absent.txt']);
    expect(noLatest.code).toBe(3);
    expect(noLatest.stderr).toContain(
      'the latest successful run of digest on debian-12 (#2) has no artifact absent.txt',
    );
    await c.schedule('never', 'exit 1\n');
    expect((await c.client(['execute', 'never', '--follow'])).code).toBe(1);
    const noSuccess = await c.client(['execute', 'shout', '--input-from', 'never:x']);
    expect(noSuccess.code).toBe(3);
    expect(noSuccess.stderr).toContain('--input-from never:x: job never has no successful run on debian-12');
    // nothing was queued by any of them
    expect((await runsOf(c, 'shout')).length).toBe(2);

    // a hash the server never received is refused by execute itself
    const peer = await Peer.open(c.url);
    try {
      await peer.hello('client', c.tokens.admin);
      const res = await peer.request('execute', {
        name: 'digest',
        inputs: [{ name: 'x.txt', size: 3, sha256: sha256('abc') }],
      });
      expect(JSON.stringify(res)).toContain(`the server has no file with sha256 ${sha256('abc')} and 3 bytes`);
    } finally {
      peer.ws.close();
    }
  }, 60_000);

  it('a stored input whose bytes no longer match its SHA-256 ends the run error, and the job never runs', async () => {
    const text = 'soon damaged\n';
    const file = c.script('damaged.txt', text);
    await c.schedule('strict', 'echo SHOULD-NOT-RUN; cat "$BUILDER_INPUT/damaged.txt"\n');
    // send it and queue nothing yet: a dropped platform holds the run
    expect((await c.client(['drop-platform', 'debian-12'])).code).toBe(0);
    const q = await c.client(['execute', 'strict', '--input', file]);
    expect(q.code, q.stderr).toBe(0);
    const blob = join(c.dataDir, 'artifacts', 'blobs', sha256(text).slice(0, 2), sha256(text));
    writeFileSync(blob, 'SOON DAMAGED\n'); // same size, other bytes
    expect((await c.client(['undrop-platform', 'debian-12'])).code).toBe(0);
    await waitFor(async () => (await info(c, 'strict/1')).state === 'error', 'strict/1 to end');
    const run = await info(c, 'strict/1');
    expect(run.result?.message).toContain('input damaged.txt does not match its checksum');
    const log = await (await fetch(`${c.url}/job/strict/run/1/console.txt`)).text();
    expect(log).not.toContain('SHOULD-NOT-RUN');
  }, 60_000);

  it('serves a run input only to the worker holding the attempt, with its secret', async () => {
    // a finished run's attempt is held by nobody
    const done = (await c.run('digest/1')).id;
    const res = await fetch(`${c.url}/inputs/${done}/1/hello.txt`, {
      headers: { authorization: `Bearer ${c.tokens.worker}` },
    });
    expect(res.status).toBe(409);
    const anon = await fetch(`${c.url}/inputs/00000000-0000-0000-0000-000000000000/1/hello.txt`);
    expect(anon.status).toBe(401);
    const upload = await fetch(`${c.url}/inputs`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${c.tokens.read}` },
    });
    expect(upload.status).toBe(403);
  });

  it('a rebuild builds from the same inputs; compare and the signed provenance name them', async () => {
    // digest/1 read hello.txt (test 1); its rebuild gets the same file without sending it again
    const r = await c.client(['execute', 'digest', '--rebuild', '1', '--follow']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const rebuild = (await runsOf(c, 'digest')).reduce((a, b) => (a.number > b.number ? a : b));
    expect((await info(c, `digest/${rebuild.number}`)).inputs).toEqual([
      { name: 'hello.txt', size: 13, sha256: sha256('hello inputs\n'), from: null },
    ]);
    expect(await artifact(c, 'digest', rebuild.number, 'upper.txt')).toBe('HELLO INPUTS\n');

    // shout/1 had upper.txt only, shout/2 also the digest file
    const cmp = await c.client(['compare', 'shout', '1', '2', '--json']);
    expect(cmp.code, cmp.stderr).toBe(0);
    const inputs = (JSON.parse(cmp.stdout) as { inputs: { same: boolean; changed: { name: string }[] } }).inputs;
    expect(inputs.same).toBe(false);
    expect(inputs.changed.map((i) => i.name)).toContain('digest');
    const text = await c.client(['compare', 'shout', '1', '2']);
    expect(text.stdout).toMatch(/^inputs {5}.*digest: \(none\) → [0-9a-f]{12}/m);

    const envelope = (await (await fetch(`${c.url}/job/digest/run/1/provenance.json`)).json()) as { payload: string };
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as {
      predicate: {
        buildDefinition: {
          externalParameters: { inputs?: { name: string; sha256: string }[] };
          resolvedDependencies: { name?: string; digest: { sha256?: string } }[];
        };
      };
    };
    const def = statement.predicate.buildDefinition;
    expect(def.externalParameters.inputs).toMatchObject([{ name: 'hello.txt', sha256: sha256('hello inputs\n') }]);
    expect(def.resolvedDependencies).toContainEqual({
      name: 'hello.txt',
      digest: { sha256: sha256('hello inputs\n') },
    });
  }, 60_000);
});

describe('after: chains (host executor)', () => {
  let c: Cluster;
  let flag: string;
  beforeAll(async () => {
    c = await Cluster.start();
    flag = join(c.dir, 'go');
    c.startWorker('w1');
    await c.waitForWorkers('w1');
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('A → B → C: each success queues one run of the next with its artifacts as inputs', async () => {
    await c.schedule(
      'a',
      `while [ ! -e ${flag} ]; do sleep 0.05; done\necho "from a $BUILDER_RUN" > "$BUILDER_OUTPUT/a.txt"\n`,
    );
    await c.schedule('b', 'tr a-z A-Z < "$BUILDER_INPUT/a.txt" > "$BUILDER_OUTPUT/b.txt"\n', ['--after', 'a']);
    await c.schedule('c', 'cat "$BUILDER_INPUT/b.txt"; rev "$BUILDER_INPUT/b.txt" > "$BUILDER_OUTPUT/c.txt"\n', [
      '--after',
      'b',
    ]);
    writeFileSync(flag, '');
    expect((await c.client(['execute', 'a', '--follow'])).code).toBe(0);
    await waitFor(async () => (await runsOf(c, 'c')).some((r) => r.state === 'succeeded'), 'c to succeed');
    expect(await artifact(c, 'c', 1, 'c.txt')).toBe('1 A MORF\n');
    const b1 = await info(c, 'b/1');
    expect(b1).toMatchObject({ state: 'succeeded', trigger: 'after', after: { job: 'a', number: 1 } });
    expect(b1.inputs).toEqual([
      {
        name: 'a.txt',
        size: 9,
        sha256: sha256('from a 1\n'),
        from: { job: 'a', number: 1, platform: 'debian-12', path: 'a.txt' },
      },
    ]);
    expect(await (await fetch(`${c.url}/job/b/run/1`)).text()).toContain('<a href="/job/a/run/1">a #1</a> succeeded');

    // a failure queues nothing
    expect((await c.client(['execute', 'a', '--param', 'X=1', '--follow'])).code).toBe(0);
    await waitFor(
      async () => (await runsOf(c, 'c')).length === 2 && (await runsOf(c, 'c')).every((r) => r.state === 'succeeded'),
      'second chain',
    );
    await c.schedule('b', 'exit 3\n', ['--after', 'a']);
    expect((await c.client(['execute', 'a', '--follow'])).code).toBe(0);
    await waitFor(
      async () => (await runsOf(c, 'b')).length === 3 && (await runsOf(c, 'b'))[0]!.state === 'failed',
      'b to fail',
    );
    expect((await runsOf(c, 'b')).length).toBe(3);
    expect((await runsOf(c, 'c')).length).toBe(2);
  }, 120_000);

  it('refuses a cycle and an unknown job at schedule time', async () => {
    const script = c.script('true.sh', 'true\n');
    const cycle = await c.client(['schedule', 'a', '--platform', 'debian-12', '--script', script, '--after', 'c']);
    expect(cycle.code).toBe(2);
    expect(cycle.stderr).toContain('after: a → c → b → a would be a cycle');
    const self = await c.client(['schedule', 'a', '--platform', 'debian-12', '--script', script, '--after', 'a']);
    expect(self.code).toBe(2);
    const unknown = await c.client([
      'schedule',
      'x',
      '--platform',
      'debian-12',
      '--script',
      script,
      '--after',
      'nosuch',
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('after: no job named "nosuch"');
  });

  it('apply: after: in job files, applied in chain order, a cycle among the files changing nothing', async () => {
    const dir = join(c.dir, 'jobs');
    mkdirSync(dir);
    const write = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    // the follower comes first on the command line: apply creates the job it follows first
    const pkg = write('pkg.yaml', 'platforms: debian-12\nafter: tarball\nscript: ls "$BUILDER_INPUT"\n');
    const tarball = write('tarball.yaml', 'platforms: debian-12\nscript: echo t > "$BUILDER_OUTPUT/t"\n');
    const ok = await c.client(['apply', pkg, tarball]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toContain('applied: 2 created');
    const listed = JSON.parse((await c.client(['jobs', '--json'])).stdout) as { name: string; after: string | null }[];
    expect(listed.find((j) => j.name === 'pkg')?.after).toBe('tarball');

    const loop = write('tarball.yaml', 'platforms: debian-12\nafter: pkg\nscript: echo loop\n');
    const extra = write('extra.yaml', 'platforms: debian-12\nafter: nosuch\nscript: echo extra\n');
    const refused = await c.client(['apply', pkg, loop, extra]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${loop}: after: tarball → pkg → tarball would be a cycle`);
    expect(refused.stderr).toContain(`${extra}: after: no job named "nosuch"`);
    expect(refused.stderr).toContain('nothing was changed');
    const jobs = JSON.parse((await c.client(['jobs', '--json'])).stdout) as { name: string; after: string | null }[];
    expect(jobs.find((j) => j.name === 'tarball')?.after).toBeNull();
    expect(jobs.some((j) => j.name === 'extra')).toBe(false);
  });

  it('queues exactly one follower when the server is killed between the success and its dispatch', async () => {
    await c.schedule('b', 'tr a-z A-Z < "$BUILDER_INPUT/a.txt" > "$BUILDER_OUTPUT/b.txt"\n', ['--after', 'a']);
    const before = (await runsOf(c, 'b')).length;
    rmSync(flag, { force: true });
    const queued = await c.client(['execute', 'a']);
    expect(queued.code, queued.stderr).toBe(0);
    const n = (await runsOf(c, 'a'))[0]!.number;
    await waitFor(async () => (await info(c, `a/${n}`)).state === 'running', 'a to run');
    // a dropped platform: b is queued with a's success but not dispatched
    expect((await c.client(['drop-platform', 'debian-12'])).code).toBe(0);
    writeFileSync(flag, '');
    await waitFor(async () => (await info(c, `a/${n}`)).state === 'succeeded', 'a to succeed');
    expect((await runsOf(c, 'b')).length).toBe(before + 1);
    expect((await runsOf(c, 'b'))[0]).toMatchObject({ state: 'queued', after: { job: 'a', number: n } });
    await c.killServer('SIGKILL');
    await c.startServer();
    await c.waitForWorkers('w1');
    expect((await c.client(['undrop-platform', 'debian-12'])).code).toBe(0);
    const bNumber = before + 1;
    await waitFor(async () => (await info(c, `b/${bNumber}`)).state === 'succeeded', 'b to run after the restart');
    expect(await artifact(c, 'b', bNumber, 'b.txt')).toBe(`FROM A ${n}\n`);
    await waitFor(async () => (await runsOf(c, 'c')).some((r) => r.after?.number === bNumber), 'c to follow');
    expect((await runsOf(c, 'b')).length).toBe(before + 1);
  }, 120_000);
});

const skip = chrootSkipReason();
if (skip) console.warn(`chroot inputs test skipped: ${skip}`);

describe.skipIf(skip !== undefined)('run inputs in the chroot sandbox', () => {
  let c: Cluster;
  beforeAll(async () => {
    await ensureRootfs();
    c = await Cluster.start();
  }, ROOTFS_TIMEOUT_MS);
  afterAll(async () => {
    await c?.stop();
  });

  it('places the inputs at /builder/input, readable by the job', async () => {
    c.startWorker('cw', { args: ['--executor', 'chroot', '--root', ROOTFS, '--id-range', TEST_ID_RANGE] });
    await c.waitForWorkers('cw');
    const file = c.script('hello.txt', 'hello chroot\n');
    await c.schedule('boxed', DIGEST);
    const r = await c.client(['execute', 'boxed', '--input', file, '--follow']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('input=/builder/input\n');
    expect(await artifact(c, 'boxed', 1, 'upper.txt')).toBe('HELLO CHROOT\n');
    expect((await artifact(c, 'boxed', 1, 'digest')).trim()).toBe(sha256('hello chroot\n'));
  }, 120_000);
});
