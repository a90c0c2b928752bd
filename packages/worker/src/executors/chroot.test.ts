/**
 * The chroot executor against the real kernel: needs root, overlayfs, namespaces, cgroups and a
 * debootstrapped rootfs (made once by debian/mkroot under .build/roots/bookworm, then reused).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chrootExecutor, jobMaker } from '../test-support/chroot-jobs.ts';
import { recordingIO } from '../test-support/recording-io.ts';
import {
  chrootSkipReason,
  ensureRootfs,
  REPO,
  ROOTFS,
  ROOTFS_TIMEOUT_MS,
  TEST_ID_RANGE,
} from '../test-support/chroot-root.ts';
import { cgroupVersion } from './chroot-cgroup.ts';
import { compileChrootOptions, type ChrootOptionsInput } from './chroot-options.ts';

const skip = chrootSkipReason();
if (skip) console.warn(`chroot executor tests skipped: ${skip}`);

const RUN_ID = '3c1f0b8e-1111-4222-8333-444455556666';
let tmp: string;
let workDir: string;

const executor = (input: ChrootOptionsInput = {}, dir = workDir) => chrootExecutor(dir, input);
const job = jobMaker(RUN_ID.slice(0, 8));

const io = (killGraceMs = 500) => recordingIO(killGraceMs);

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[1]?.startsWith(dir));
}

function cgroupsLeft(): string[] {
  const parents =
    cgroupVersion() === 2
      ? ['/sys/fs/cgroup/builder']
      : ['memory', 'pids', 'cpu'].map((c) => `/sys/fs/cgroup/${c}/builder`);
  return parents.flatMap((p) => (existsSync(p) ? execFileSync('ls', [p]).toString().split('\n').filter(Boolean) : []));
}

function assertClean(dir = workDir): void {
  expect(mountsUnder(dir)).toEqual([]);
  expect(cgroupsLeft().filter((c) => c.startsWith(RUN_ID.slice(0, 8)))).toEqual([]);
  // only the worker's /dev template stays
  const entries = existsSync(dir) ? execFileSync('ls', ['-A', dir]).toString().trim() : '';
  expect(entries.split('\n').filter((e) => e && e !== '.dev')).toEqual([]);
}

describe.skipIf(skip !== undefined)('chroot executor (real namespaces, overlayfs, cgroups)', () => {
  beforeAll(async () => {
    await ensureRootfs();
    tmp = mkdtempSync('/tmp/builder-chroot-test-');
    workDir = join(tmp, 'work');
  }, ROOTFS_TIMEOUT_MS);
  afterAll(() => {
    if (tmp && mountsUnder(tmp).length === 0) rmSync(tmp, { recursive: true, force: true });
  });

  it('runs the script as nobody in /builder/work with its env, collects output, leaves nothing', async () => {
    const t = io();
    const result = await executor().run(
      job(
        'echo "$(id -u):$(id -g) $(pwd) $BUILDER_OUTPUT $HOME $REV"; echo oops >&2; echo built > $BUILDER_OUTPUT/result.txt; exit 3',
        { params: { REV: "a'b c" } },
      ),
      t.runIO,
    );
    expect(result).toEqual({ kind: 'exited', code: 3 });
    expect(t.stdout()).toBe("65534:65534 /builder/work /builder/output /builder/work a'b c\n");
    expect(t.stderr()).toBe('oops\n');
    expect(t.collected.map(([, result]) => result)).toEqual(['built\n']);
    expect(t.notes).toEqual([]);
    assertClean();
  });

  it("gets its secrets in its environment through a pipe: never in the run dir's files", async () => {
    const t = io();
    const value = "s3cr'et\nwith a second line";
    const result = await executor().run(
      job(
        // while the job runs, what the worker wrote for it is in the run dir: keep a copy to search
        `printf '%s' "$SIGNING_KEY" | sha256sum; echo "$REV"; cat /builder/env > /builder/output/result.txt`,
        { secrets: { SIGNING_KEY: value, BUILDER_JOB: 'overridden?' }, params: { REV: 'r1' } },
      ),
      t.runIO,
    );
    expect(result).toEqual({ kind: 'exited', code: 0 });
    const { createHash } = await import('node:crypto');
    expect(t.stdout()).toBe(`${createHash('sha256').update(value).digest('hex')}  -\nr1\n`);
    const envFileText = t.collected[0]?.[1] ?? '';
    expect(envFileText).toContain("export REV='r1'");
    expect(envFileText).not.toContain('s3cr');
    expect(envFileText).toContain("export BUILDER_JOB='nightly'");
  });

  it('runs a #! script directly, as root with BUILDER_ROOT=1', async () => {
    const t = io();
    const result = await executor().run(
      job('#!/bin/bash\necho "$BASH_VERSION" | cut -c1; id -u', { params: { BUILDER_ROOT: '1' } }),
      t.runIO,
    );
    expect(result).toEqual({ kind: 'exited', code: 0 });
    expect(t.stdout()).toBe('5\n0\n');
  });

  it('cannot see host files, is in its own pid namespace under the setup, has its own hostname', async () => {
    const marker = join(tmp, 'host-marker');
    writeFileSync(marker, 'secret');
    writeFileSync('/root/.builder-chroot-test-marker', 'secret');
    try {
      const t = io();
      const script = [
        `test -e ${marker} && echo SEES-MARKER`,
        'test -e /root/.builder-chroot-test-marker && echo SEES-ROOT-MARKER',
        `test -e ${REPO}/package.json && echo SEES-REPO`,
        'echo "pid $$"',
        'tr "\\0\\n" "  " </proc/1/cmdline | cut -c1-20',
        'ls /proc | grep -c "^[0-9]"',
        'hostname; cat /etc/hostname >/dev/null',
        'cat /etc/debian_version >/dev/null && echo debian',
      ].join('\n');
      expect(await executor().run(job(script), t.runIO)).toEqual({ kind: 'exited', code: 0 });
      const lines = t.stdout().trim().split('\n');
      expect(lines).not.toContain('SEES-MARKER');
      expect(lines).not.toContain('SEES-ROOT-MARKER');
      expect(lines).not.toContain('SEES-REPO');
      // pids count from 1 in the new namespace: the setup's few commands, then the job
      expect(Number(/^pid (\d+)$/.exec(lines[0] as string)?.[1])).toBeLessThan(64);
      expect(lines[1]).toMatch(/^bwrap /); // pid 1 is bubblewrap's reaper
      expect(Number(lines[2])).toBeLessThan(10); // only the sandbox's few processes
      expect(lines[3]).toBe('nightly-7');
      expect(lines[4]).toBe('debian');
    } finally {
      rmSync('/root/.builder-chroot-test-marker', { force: true });
    }
  });

  it('has no network unless BUILDER_NETWORK=1: only lo, and a host port is unreachable', async () => {
    const server: Server = await new Promise((ok) => {
      const s = createServer((c) => c.on('error', () => undefined).end('hello\n')).listen(0, '127.0.0.1', () => ok(s));
    });
    const port = (server.address() as { port: number }).port;
    try {
      const script = `ls /sys/class/net 2>/dev/null; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '
if (exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null; then echo CONNECTED; else echo REFUSED; fi`;
      const t = io();
      expect(await executor().run(job(`#!/bin/bash\n${script}`), t.runIO)).toEqual({ kind: 'exited', code: 0 });
      expect(t.stdout().trim().split('\n')).toEqual(['lo', 'REFUSED']);
      const n = io();
      const allowed = await executor().run(
        job(`#!/bin/bash\n${script}`, { params: { BUILDER_NETWORK: '1' } }),
        n.runIO,
      );
      expect(allowed).toEqual({ kind: 'exited', code: 0 });
      expect(n.stdout()).toContain('CONNECTED');
    } finally {
      server.close();
    }
  });

  it('cannot change the base rootfs, even as root; the next job sees a clean root', async () => {
    const before = readFileSync(join(ROOTFS, 'etc/passwd'), 'utf8');
    const t = io();
    const script = 'echo x > /etc/x; echo evil >> /etc/passwd; rm -f /bin/ls; ls /nonexistent 2>/dev/null; cat /etc/x';
    expect(await executor().run(job(script, { params: { BUILDER_ROOT: '1' } }), t.runIO)).toEqual({
      kind: 'exited',
      code: 0,
    });
    expect(t.stdout()).toBe('x\n');
    expect(existsSync(join(ROOTFS, 'etc/x'))).toBe(false);
    expect(readFileSync(join(ROOTFS, 'etc/passwd'), 'utf8')).toBe(before);
    const again = io();
    await executor().run(job('test -e /etc/x && echo LEAKED; ls -d /bin/ls; touch /etc/y || echo denied'), again.runIO);
    expect(again.stdout()).toBe('/bin/ls\ndenied\n');
    assertClean();
  });

  it("a root job keeps only a package build's capabilities: no mknod of a disk, no mount; no_new_privs for all", async () => {
    const t = io();
    const script =
      'mknod /tmp/sda b 8 0 2>/dev/null && echo MKNOD; mount -t tmpfs x /mnt 2>/dev/null && echo MOUNT; chown nobody /builder/work && echo chown; grep NoNewPrivs /proc/self/status';
    expect(await executor().run(job(script, { params: { BUILDER_ROOT: '1' } }), t.runIO)).toEqual({
      kind: 'exited',
      code: 0,
    });
    expect(t.stdout()).toBe('chown\nNoNewPrivs:\t1\n');
  });

  it('is killed by the memory limit', async () => {
    const t = io();
    const result = await executor({ memoryLimit: '64M' }).run(
      job('head -c 300M /dev/zero | tail; echo survived'),
      t.runIO,
    );
    // tail holds the whole "line": the OOM killer takes it; the script goes on and prints
    expect(t.stdout()).toBe('survived\n');
    expect(result).toEqual({ kind: 'exited', code: 0 });
    const direct = io();
    const killed = await executor({ memoryLimit: '64M' }).run(job('exec tail /dev/zero'), direct.runIO);
    expect(killed).toEqual({ kind: 'signalled', signal: 'SIGKILL' });
    expect(direct.notes.join('\n')).toContain('killed by the memory limit');
    assertClean();
  });

  it('contains a fork bomb with the pids limit; cancel ends it and everything goes', async () => {
    const t = io(300);
    const running = executor({ pidsLimit: 64 }).run(
      job('#!/bin/bash\necho up\nb() { b | b & }; b\nsleep 1000'),
      t.runIO,
    );
    await waitFor(() => t.stdout().includes('up'));
    await new Promise((r) => setTimeout(r, 1500));
    // the host still forks fine
    expect(spawnSync('true').status).toBe(0);
    t.abort.abort();
    const result = await running;
    expect(['signalled', 'exited']).toContain(result.kind);
    assertClean();
  }, 30_000);

  it('cancel kills the whole tree, including processes that left the group', async () => {
    const t = io(300);
    const running = executor().run(
      job('setsid sleep 1013 & trap "" TERM; sleep 1013 & echo up; while :; do sleep 0.1; done'),
      t.runIO,
    );
    await waitFor(() => t.stdout().includes('up'));
    // a number no other test uses: test files run in parallel
    const sleeps = () => spawnSync('pgrep', ['-x', '-f', 'sleep 1013']).stdout.toString().trim();
    expect(sleeps()).not.toBe('');
    t.abort.abort();
    const result = await running;
    expect(result).toEqual({ kind: 'signalled', signal: 'SIGKILL' });
    expect(sleeps()).toBe('');
    assertClean();
  }, 20_000);

  it('TERM reaches the job (cancel of a cooperative job)', async () => {
    const t = io(5000);
    const running = executor().run(job('echo up; sleep 1000'), t.runIO);
    await waitFor(() => t.stdout().includes('up'));
    const at = Date.now();
    t.abort.abort();
    expect(await running).toEqual({ kind: 'signalled', signal: 'SIGTERM' });
    expect(Date.now() - at).toBeLessThan(3000);
    assertClean();
  });

  it('a setup failure is an error, not a failed build, and is cleaned up', async () => {
    const t = io();
    const base = join(tmp, 'fake-root');
    mkdirSync(join(base, 'etc'), { recursive: true });
    mkdirSync(join(base, 'bin'), { recursive: true });
    writeFileSync(join(base, 'etc/os-release'), 'ID=debian\n');
    writeFileSync(join(base, 'etc/passwd'), 'nobody:x:65534:65534::/:/bin/sh\n');
    writeFileSync(join(base, 'bin/sh'), '');
    // /bin/sh is an empty file: bubblewrap builds the sandbox, then cannot start anything in it
    const result = await executor({ root: base }).run(job('echo never'), t.runIO);
    expect(result.kind).toBe('error');
    expect((result as { message: string }).message).toMatch(
      /^cannot set up the chroot sandbox: bwrap: execvp \/bin\/sh/,
    );
    expect(t.stdout()).toBe('');
    assertClean();
  });

  it('refuses a root that is not a rootfs, saying how to make one', () => {
    expect(() => compileChrootOptions({ root: join(tmp, 'nope') })).toThrow(
      /does not exist: make one with `debian\/mkroot/,
    );
    mkdirSync(join(tmp, 'empty'), { recursive: true });
    expect(() => compileChrootOptions({ root: join(tmp, 'empty') })).toThrow(
      /not a rootfs \(no \/bin\/sh\).*debian\/mkroot/,
    );
  });

  it('cleanup() after a SIGKILLed worker: kills the running sandbox, removes cgroup, mounts and dirs', async () => {
    const dir = join(tmp, 'crash');
    // a child node process runs the executor (the built one: `tsc -b` runs before the tests) and is SIGKILLed mid-job
    const runner = join(tmp, 'runner.mjs');
    const dist = join(import.meta.dirname, '../../dist/executors');
    writeFileSync(
      runner,
      `import { ChrootExecutor } from ${JSON.stringify(join(dist, 'chroot.js'))};
import { compileChrootOptions } from ${JSON.stringify(join(dist, 'chroot-options.js'))};
import { PassThrough } from 'node:stream';
const log = { info() {}, warn() {}, error() {}, debug() {}, child() { return log; } };
const ex = new ChrootExecutor({ workDir: ${JSON.stringify(dir)}, platform: 'debian-12', log, env: {}, chroot: compileChrootOptions({ root: ${JSON.stringify(ROOTFS)}, idRange: ${JSON.stringify(TEST_ID_RANGE)} }) });
const out = new PassThrough(); out.on('data', (c) => process.stdout.write(c));
await ex.run({ runId: '${RUN_ID.slice(0, -4)}9999', attempt: 1, job: 'crash', number: 1, platform: 'debian-12', script: 'echo up; setsid sleep 1001 & sleep 1001', params: {}, timeoutSec: 60, killGraceSec: 1, attemptSecret: 'a'.repeat(64), secrets: {}, missingSecrets: [] },
  { stdout: out, stderr: new PassThrough(), note() {}, signal: new AbortController().signal, killGraceMs: 500, started() {}, collectOutput: async () => {}, refuseOutput() {}, log });
`,
    );
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [runner], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    await waitFor(() => out.includes('up'));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const sleeps = () => spawnSync('pgrep', ['-x', '-f', 'sleep 1001']).stdout.toString().trim();
    expect(sleeps()).not.toBe(''); // the job outlived its worker
    expect(cgroupsLeft()).toContain(`${RUN_ID.slice(0, -4)}9999-1`);
    await executor({}, dir).cleanup();
    expect(sleeps()).toBe('');
    assertClean(dir);
  }, 30_000);
});

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 25));
  expect(check()).toBe(true);
}
