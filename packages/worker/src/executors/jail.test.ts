import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Assignment, silentLogger } from '@builder/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { recordingIO } from '../test-support/recording-io.ts';
import { JailExecutor } from './jail.ts';
import { type Fakes, makeFakes } from '../test-support/jail-fakes.ts';
import { compileJailOptions, type JailOptionsInput } from './jail-options.ts';

const RUN_ID = '3c1f0b8e-1111-4222-8333-444455556666';
const NAME = 'builder-3c1f0b8e-1';
const SNAP = 'zroot/builder/base@clean';
let fakes: Fakes;

afterEach(() => {
  if (fakes) rmSync(fakes.dir, { recursive: true, force: true });
});

type Input = JailOptionsInput | ((f: Fakes) => JailOptionsInput);

function setup(input: Input = {}, env: NodeJS.ProcessEnv = {}, capacity = 1) {
  fakes = makeFakes();
  const root = join(fakes.dir, 'jails');
  const given = typeof input === 'function' ? input(fakes) : input;
  const base = given.baseDir === undefined ? { zfsSnapshot: SNAP } : {};
  const jail = compileJailOptions({ ...base, root, ...given }, capacity);
  const executor = new JailExecutor({
    workDir: join(fakes.dir, 'work'),
    platform: 'freebsd-14',
    log: silentLogger,
    env: { PATH: `${fakes.bin}:/usr/bin:/bin`, ...env },
    jail,
  });
  return { executor, root, path: join(root, NAME) };
}

function job(script: string, over: Partial<Assignment> = {}): Assignment {
  return {
    runId: RUN_ID,
    attempt: 1,
    job: 'nightly',
    number: 7,
    platform: 'freebsd-14',
    script,
    params: {},
    timeoutSec: 60,
    killGraceSec: 1,
    attemptSecret: 'a'.repeat(64),
    secrets: {},
    missingSecrets: [],
    ...over,
  };
}

const io = (killGraceMs = 300) => recordingIO(killGraceMs);

const JEXEC = `jexec -U builder ${NAME} /bin/sh -c cd builder/work && exec /bin/sh ../script.sh`;

function setupLines(path: string): string[] {
  return [
    `zfs clone -o mountpoint=${path} ${SNAP} zroot/builder/${NAME}`,
    `mount -t devfs -o ruleset=4 devfs ${path}/dev`,
    `jail -c name=${NAME} path=${path} host.hostname=nightly-7.builder ip4.addr=127.0.2.10 ip6=disable devfs_ruleset=4 enforce_statfs=2 children.max=0 allow.set_hostname=0 allow.sysvipc=0 allow.raw_sockets=0 allow.chflags=0 allow.mount=0 allow.socket_af=0 persist`,
  ];
}
function teardownLines(path: string): string[] {
  return [`jail -r ${NAME}`, `umount -f ${path}/dev`, `zfs destroy -f zroot/builder/${NAME}`];
}

describe('jail executor, against fake FreeBSD tools', () => {
  it('clones, mounts devfs, creates the jail, runs the script with jexec and tears it all down', async () => {
    const { executor, path } = setup();
    const t = io();
    const result = await executor.run(
      job(
        'echo "out $BUILDER_OUTPUT $HOME $USER $REV"; echo oops >&2; pwd; echo built > ../output/result.txt; exit 3',
        {
          params: { REV: 'abc' },
        },
      ),
      t.runIO,
    );
    expect(result).toEqual({ kind: 'exited', code: 3 });
    expect(fakes.log()).toEqual([...setupLines(path), JEXEC, ...teardownLines(path)]);
    expect(t.stdout()).toBe(`out /builder/output /builder/work builder abc\n${path}/builder/work\n`);
    expect(t.stderr()).toBe('oops\n');
    expect(t.started()).toBe(1);
    // read from the host side, before teardown
    expect(t.collected).toEqual([[`${path}/builder/output`, 'built\n']]);
    expect(existsSync(path)).toBe(false);
    expect(t.notes).toEqual([]);
  });

  it('refuses a run with inputs before making anything: it would build without its files', async () => {
    const { executor } = setup();
    const t = io();
    let placed = 0;
    const inputs = { count: 1, place: async () => void placed++ };
    expect(await executor.run(job('echo never'), { ...t.runIO, inputs })).toEqual({
      kind: 'error',
      message: 'the jail executor cannot place inputs yet ($BUILDER_INPUT)',
    });
    expect(fakes.log()).toEqual([]);
    expect(placed).toBe(0);
  });

  it('refuses a job with a prepare step before it makes anything', async () => {
    const { executor } = setup();
    const t = io();
    const result = await executor.run(job('make', { prepare: 'pkg install -y gmake' }), t.runIO);
    expect(result).toMatchObject({ kind: 'error' });
    expect(JSON.stringify(result)).toContain('the jail executor cannot run a prepare step');
    expect(fakes.log()).toEqual([]);
    expect(t.started()).toBe(0);
  });

  it('runs a script with a #! line directly', async () => {
    const { executor } = setup();
    const t = io();
    expect(await executor.run(job('#!/bin/sh\necho direct'), t.runIO)).toEqual({ kind: 'exited', code: 0 });
    expect(t.stdout()).toBe('direct\n');
    expect(fakes.log()).toContain(`jexec -U builder ${NAME} /bin/sh -c cd builder/work && exec ../script.sh`);
  });

  it('adds and removes the address on --jail-interface', async () => {
    const { executor, path } = setup({ interface: 'lo1' });
    expect(await executor.run(job('true'), io().runIO)).toEqual({ kind: 'exited', code: 0 });
    const [clone, mount, create] = setupLines(path);
    const [remove, umount, destroy] = teardownLines(path);
    expect(fakes.log()).toEqual([
      clone,
      mount,
      'ifconfig lo1 inet 127.0.2.10/32 alias',
      create,
      JEXEC,
      remove,
      'ifconfig lo1 inet 127.0.2.10 -alias',
      umount,
      destroy,
    ]);
  });

  it.each([
    ['zfs clone', 0],
    ['mount -t devfs', 1],
    ['ifconfig lo1 inet 127.0.2.10/32 alias', 2],
    ['jail -c', 3],
  ])('when `%s` fails: an error naming it, and what was set up is torn down', async (failing, ran) => {
    const { executor, path } = setup({ interface: 'lo1' }, { FAKE_FAIL: failing });
    const t = io();
    const result = await executor.run(job('echo never'), t.runIO);
    expect(result.kind).toBe('error');
    const message = (result as { message: string }).message;
    expect(message).toContain(`cannot set up jail ${NAME}: \`${failing}`);
    expect(message).toContain(`exited 1: ${failing.split(' ')[0]}: simulated failure`);
    // undone last made first
    const undo = [
      'ifconfig lo1 inet 127.0.2.10 -alias',
      `umount -f ${path}/dev`,
      `zfs destroy -f zroot/builder/${NAME}`,
    ].slice(3 - ran);
    expect(fakes.log().slice(ran + 1)).toEqual(undo);
    expect(fakes.log()[ran]).toMatch(new RegExp(`^${failing}`));
    expect(t.started()).toBe(0);
    expect(existsSync(path)).toBe(false);
  });

  it('a jexec that fails is the job failing: its message on stderr, everything torn down', async () => {
    const { executor, path } = setup();
    const t = io();
    // jexec gets the job's environment, so the failure switch rides in as a parameter
    const result = await executor.run(job('echo never', { params: { FAKE_FAIL: 'jexec' } }), t.runIO);
    expect(result).toEqual({ kind: 'exited', code: 1 });
    expect(t.stderr()).toContain('jexec: simulated failure');
    expect(fakes.log().slice(-3)).toEqual(teardownLines(path));
  });

  it('removes the jail, and with it every process of the job, before reading its output from the host', async () => {
    const { executor, path } = setup();
    const t = io();
    let ranBefore: string[] = [];
    const result = await executor.run(job('echo built > ../output/result.txt'), {
      ...t.runIO,
      collectOutput: async (dir) => {
        ranBefore = fakes.log();
        await t.runIO.collectOutput(dir);
      },
    });
    expect(result).toEqual({ kind: 'exited', code: 0 });
    expect(ranBefore.slice(-2)).toEqual([JEXEC, `jail -r ${NAME}`]);
    expect(t.collected).toEqual([[`${path}/builder/output`, 'built\n']]);
    // removed once: teardown goes on with the rest
    expect(fakes.log().filter((l) => l.startsWith('jail -r'))).toHaveLength(1);
  });

  it('a jail that cannot be removed: its output is refused, teardown tries again and goes on', async () => {
    const { executor, path } = setup({}, { FAKE_FAIL: 'jail -r' });
    const t = io();
    expect(await executor.run(job('echo built > ../output/result.txt'), t.runIO)).toEqual({ kind: 'exited', code: 0 });
    expect(fakes.log().slice(-4)).toEqual([`jail -r ${NAME}`, ...teardownLines(path)]);
    expect(t.collected).toEqual([]);
    expect(t.refused).toEqual(['the jail could not be removed, so processes of the job may still change its output']);
    const failed = `[builder] teardown: \`jail -r ${NAME}\` failed; see the worker log`;
    expect(t.notes).toEqual([failed, failed]);
  });

  it('gives concurrent jobs different addresses and frees them after', async () => {
    const { executor } = setup({ ipRange: '127.0.2.10-127.0.2.11' }, {}, 2);
    const a = executor.run(job('sleep 0.3', { runId: 'aaaaaaaa-1111-4222-8333-444455556666' }), io().runIO);
    const b = executor.run(job('sleep 0.3', { runId: 'bbbbbbbb-1111-4222-8333-444455556666' }), io().runIO);
    // the range is full now
    expect(await executor.run(job('true', { runId: 'cccccccc-1111-4222-8333-444455556666' }), io().runIO)).toEqual({
      kind: 'error',
      message: 'no free address in --jail-ip-range',
    });
    expect(await Promise.all([a, b])).toEqual([
      { kind: 'exited', code: 0 },
      { kind: 'exited', code: 0 },
    ]);
    // addresses are taken in the order run() is called; the setups themselves interleave
    const create = (name: string) => fakes.log().find((l) => l.startsWith(`jail -c name=${name} `));
    expect(create('builder-aaaaaaaa-1')).toContain('ip4.addr=127.0.2.10 ');
    expect(create('builder-bbbbbbbb-1')).toContain('ip4.addr=127.0.2.11 ');
    expect(await executor.run(job('true', { runId: 'dddddddd-1111-4222-8333-444455556666' }), io().runIO)).toEqual({
      kind: 'exited',
      code: 0,
    });
    expect(fakes.log().filter((l) => l.startsWith('jail -c'))[2]).toContain('ip4.addr=127.0.2.10 ');
  });

  it('cancel: TERM reaches the job through jexec, then the jail goes', async () => {
    const { executor, path } = setup();
    const t = io();
    const running = executor.run(job('echo up; sleep 30'), t.runIO);
    await waitFor(() => t.stdout() === 'up\n');
    t.abort.abort();
    expect(await running).toEqual({ kind: 'signalled', signal: 'SIGTERM' });
    expect(fakes.log().slice(-3)).toEqual(teardownLines(path));
  });

  it('timeout of a job that ignores TERM: KILL after the grace', async () => {
    const { executor } = setup();
    const t = io(200);
    const running = executor.run(job('trap "" TERM; echo up; while :; do sleep 0.05; done'), t.runIO);
    await waitFor(() => t.stdout() === 'up\n');
    t.abort.abort();
    expect(await running).toEqual({ kind: 'signalled', signal: 'SIGKILL' });
    expect(t.notes.join('\n')).toContain('sent SIGKILL');
  });

  it('copy mode: cp -a of the base dir, removed with chflags + rm after', async () => {
    const { executor: copy, path } = setup((f) => ({ baseDir: f.base }));
    const t = io();
    expect(await copy.run(job('cat /dev/null; ls ../output; echo ok > ../output/result.txt'), t.runIO)).toEqual({
      kind: 'exited',
      code: 0,
    });
    expect(fakes.log()).toEqual([
      `cp -a ${fakes.base} ${path}`,
      `mount -t devfs -o ruleset=4 devfs ${path}/dev`,
      expect.stringMatching(/^jail -c name=builder-3c1f0b8e-1 /),
      JEXEC,
      `jail -r ${NAME}`,
      `umount -f ${path}/dev`,
      `chflags -R 0 ${path}`,
      `rm -rf ${path}`,
    ]);
    expect(t.collected).toEqual([[`${path}/builder/output`, 'ok\n']]);
    expect(existsSync(path)).toBe(false);
  });

  it('copy mode: a devfs that will not unmount keeps the copy (rm -rf would reach the host /dev)', async () => {
    const { executor: copy, path } = setup((f) => ({ baseDir: f.base }), { FAKE_FAIL: 'umount' });
    const t = io();
    await copy.run(job('true'), t.runIO);
    expect(fakes.log().slice(-2)).toEqual([`jail -r ${NAME}`, `umount -f ${path}/dev`]);
    expect(t.notes).toContain(`[builder] teardown: not removing ${path}: its devfs is still mounted`);
    expect(existsSync(path)).toBe(true);
  });

  it('a base without the jail user is a setup error, cleaned up', async () => {
    const { executor, path } = setup();
    writeFileSync(join(fakes.base, 'etc/passwd'), 'root:*:0:0::/root:/bin/sh\n');
    const result = await executor.run(job('true'), io().runIO);
    expect(result).toEqual({
      kind: 'error',
      message: `cannot set up jail ${NAME}: user "builder" not found in ${path}/etc/passwd: add it to the base (see freebsd/base-snapshot.md)`,
    });
    expect(fakes.log().slice(-1)).toEqual([`zfs destroy -f zroot/builder/${NAME}`]);
  });

  it('cleanup() removes leftover jails, mounts, clones and addresses by name, and nothing else', async () => {
    const { executor, root } = setup({ interface: 'lo1' });
    const state = join(fakes.dir, 'state');
    const stale = join(root, 'builder-deadbeef-2');
    mkdirSync(join(stale, 'dev'), { recursive: true });
    writeFileSync(join(state, 'jails/builder-deadbeef-2'), stale);
    writeFileSync(join(state, 'jails/www'), '/jails/www');
    writeFileSync(join(state, 'mounts'), `devfs ${stale}/dev devfs rw 0 0\ndevfs /dev devfs rw 0 0\n`);
    writeFileSync(join(state, 'zfs/zroot%builder%builder-deadbeef-2'), stale);
    writeFileSync(join(state, 'zfs/zroot%builder%base'), '/nonexistent');
    writeFileSync(join(state, 'aliases'), '127.0.0.1\n127.0.2.12\n');
    await executor.cleanup();
    expect(fakes.log()).toEqual([
      'jls name',
      'mount -p',
      'zfs list -H -o name -d 1 zroot/builder',
      'ifconfig lo1 inet',
      'ifconfig lo1 inet 127.0.2.12 -alias',
      'jail -r builder-deadbeef-2',
      `umount -f ${stale}/dev`,
      'zfs destroy -f zroot/builder/builder-deadbeef-2',
    ]);
    expect(existsSync(stale)).toBe(false);
  });
});

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 25));
  expect(check()).toBe(true);
}
