/**
 * A hostile build script as root (BUILDER_ROOT=1) in the real chroot sandbox tries every way out
 * issue 15 lists; each must fail and leave the host as it was. Needs root, bubblewrap and the
 * test rootfs (see test-support/chroot-root.ts).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chrootSkipReason, ensureRootfs, ROOTFS_TIMEOUT_MS, TEST_ID_RANGE } from '../test-support/chroot-root.ts';
import { chrootExecutor, jobMaker } from '../test-support/chroot-jobs.ts';
import { recordingIO } from '../test-support/recording-io.ts';
import { AARCH64, X86_64 } from './chroot-seccomp.ts';

const skip = chrootSkipReason();
if (skip) console.warn(`chroot escape tests skipped: ${skip}`);

const job = jobMaker('e5c4fe00');
const NR = (process.arch === 'arm64' ? AARCH64 : X86_64).deny;
const ROOT_OUTSIDE = Number(TEST_ID_RANGE.split(':')[0]);
let tmp: string;
let workDir: string;
/** Files that exist only on the host, and where the job would write if it got out. */
let secret: string;
let hostOnly: string;
let written: string;

async function asRoot(script: string, params: Record<string, string> = {}) {
  const t = recordingIO(500);
  const result = await chrootExecutor(workDir).run(
    job(`#!/bin/bash\n${script}`, { params: { BUILDER_ROOT: '1', ...params } }),
    t.runIO,
  );
  return { result, out: t.stdout(), err: t.stderr() };
}

describe.skipIf(skip !== undefined)('a root job cannot leave the chroot sandbox', () => {
  beforeAll(async () => {
    await ensureRootfs();
    tmp = mkdtempSync('/tmp/builder-escape-test-');
    workDir = join(tmp, 'work');
    mkdirSync(join(tmp, 'host-only'));
    hostOnly = join(tmp, 'host-only', 'secret');
    writeFileSync(hostOnly, 'host-only-secret-1');
    secret = `/root/.builder-escape-secret-${process.pid}`;
    written = `/root/.builder-escape-written-${process.pid}`;
    writeFileSync(secret, 'host-root-secret-2');
  }, ROOTFS_TIMEOUT_MS);
  afterAll(() => {
    rmSync(secret, { force: true });
    rmSync(written, { force: true });
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('root inside is the unprivileged host uid START of --id-range', async () => {
    const t = recordingIO(300);
    const running = chrootExecutor(workDir).run(
      job('id -u; sleep 1019 & echo up; wait', { params: { BUILDER_ROOT: '1' } }),
      t.runIO,
    );
    for (let i = 0; i < 200 && !t.stdout().includes('up'); i++) await new Promise((r) => setTimeout(r, 25));
    const pid = spawnSync('pgrep', ['-x', '-f', 'sleep 1019']).stdout.toString().trim();
    const uids = /^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.split(/\s+/);
    t.abort.abort();
    await running;
    expect(t.stdout()).toMatch(/^0\n/);
    expect(uids).toEqual(Array(4).fill(String(ROOT_OUTSIDE)));
  });

  it('the double-chroot escape ends at the sandbox root', async () => {
    const { out } = await asRoot(`cd /tmp && perl -e '
      mkdir "x"; chroot "x" or die "chroot: $!"; chdir ".." for 1..64; chroot "." or die "chroot: $!";
      opendir(D, "/"); print "ROOT: ", join(" ", sort grep { !/^\\./ } readdir(D)), "\\n";
      print open(F, "<", $ARGV[0]) ? "READ: ".<F>."\\n" : "no read: $!\\n";
      print open(W, ">", $ARGV[1]) ? "wrote inside\\n" : "no write: $!\\n";
    ' ${secret} ${written}`);
    const root = /^ROOT: (.*)$/m.exec(out)?.[1]?.split(' ') ?? [];
    expect(root).toContain('builder'); // the sandbox's /: the host's has no /builder …
    expect(root).not.toContain('work'); // … and the sandbox's no /work
    expect(out).not.toContain('host-root-secret');
    expect(existsSync(written)).toBe(false);
  });

  it('cannot read or write a file that exists only on the host, by path or through /proc/1/root', async () => {
    const { out } = await asRoot(`
      for p in ${hostOnly} /proc/1/root${hostOnly} /proc/self/root${hostOnly} ${secret} /proc/1/root${secret}; do
        cat "$p" 2>/dev/null && echo " READ $p"
      done
      ls /proc/1/root/ | tr '\\n' ' '; echo
      mkdir -p ${join(tmp, 'host-only')} && echo pwned > ${hostOnly} && echo "wrote inside"`);
    expect(out).not.toMatch(/secret|READ/);
    expect(out).toContain('builder'); // /proc/1/root is the sandbox's own root
    expect(readFileSync(hostOnly, 'utf8')).toBe('host-only-secret-1');
    expect(readFileSync(secret, 'utf8')).toBe('host-root-secret-2');
  });

  it('cannot write /proc/sys/kernel/core_pattern or /proc/sysrq-trigger; /proc/keys and kallsyms give nothing', async () => {
    const before = readFileSync('/proc/sys/kernel/core_pattern', 'utf8');
    const { out } = await asRoot(`
      cp /proc/sys/kernel/core_pattern /tmp/cp
      cat /tmp/cp >/proc/sys/kernel/core_pattern && echo WROTE-SAME
      echo '|/tmp/evil' >/proc/sys/kernel/core_pattern && echo WROTE-PIPE
      echo 1 >/proc/sys/kernel/sysrq && echo WROTE-SYSRQ-SYSCTL
      echo h >/proc/sysrq-trigger && echo WROTE-SYSRQ
      umount /proc/sys && echo UNMASKED
      echo "keys=$(cat /proc/keys 2>/dev/null | wc -c) kallsyms=$(cat /proc/kallsyms 2>/dev/null | wc -c)"`);
    expect(out).not.toMatch(/WROTE|UNMASKED/);
    expect(out).toContain('keys=0 kallsyms=0');
    expect(readFileSync('/proc/sys/kernel/core_pattern', 'utf8')).toBe(before);
  });

  it('cannot mount, unmount, or make a disk device', async () => {
    const { out } = await asRoot(`
      mount -t tmpfs x /mnt && echo MOUNTED
      mount --bind / /mnt && echo BOUND
      umount /proc && echo UNMOUNTED
      umount -l /tmp && echo UNMOUNTED-TMP
      mknod /tmp/sda b 8 0 && echo MKNOD-DISK
      mknod /tmp/mem c 1 1 && echo MKNOD-MEM
      echo done`);
    expect(out.trim()).toBe('done');
  });

  it('cannot load a module, use the keyring, bpf or userfaultfd, or unshare into new namespaces', async () => {
    const syscalls = Object.entries({
      init_module: [NR.init_module, 0, 0, 0],
      finit_module: [NR.finit_module, 0, 0, 0],
      keyctl: [NR.keyctl, 0, 0, 0, 0, 0],
      bpf: [NR.bpf, 0, 0, 0],
      userfaultfd: [NR.userfaultfd, 0],
      unshare_user: [NR.unshare, 0x10000000],
      setns: [NR.setns, 0, 0],
    })
      .map(([name, args]) => `print "${name}: ", (syscall(${args.join(', ')}) == -1 ? "$!" : "WORKED"), "\\n";`)
      .join(' ');
    const { out } = await asRoot(`
      perl -e '${syscalls}'
      unshare -U -r id && echo UNSHARED-USER
      unshare -m true && echo UNSHARED-MOUNT
      unshare -n true && echo UNSHARED-NET
      echo done`);
    expect(out).not.toMatch(/WORKED|UNSHARED/);
    for (const name of ['init_module', 'finit_module', 'keyctl', 'bpf', 'userfaultfd', 'unshare_user', 'setns']) {
      expect(out).toContain(`${name}: Operation not permitted`);
    }
  });

  it('cannot see, signal or ptrace a process outside', async () => {
    let sleeper: ChildProcess | undefined;
    try {
      sleeper = spawn('sleep', ['1017'], { stdio: 'ignore' });
      const pid = sleeper.pid as number;
      const { out } = await asRoot(`
        kill -0 ${pid} 2>/dev/null && echo SEES
        test -e /proc/${pid} && echo PROC
        perl -e 'print syscall(${process.arch === 'arm64' ? 117 : 101}, 16, ${pid}, 0, 0) == 0 ? "ATTACHED\\n" : "ptrace: $!\\n"'`);
      expect(out).toBe('ptrace: No such process\n');
      expect(sleeper.exitCode).toBeNull();
      expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^TracerPid:\s+0$/m);
    } finally {
      sleeper?.kill('SIGKILL');
    }
  });

  it('cannot make the worker collect host files by swapping its output dir for a link', async () => {
    writeFileSync(join(tmp, 'host-only', 'result.txt'), 'host-result');
    const t = recordingIO(500);
    const result = await chrootExecutor(workDir).run(
      job(
        `rm -rf /builder/output && ln -s ${join(tmp, 'host-only')} /builder/output && echo swapped
         (sleep 0.3; ln -sfn /etc /builder/output) &`,
        { params: { BUILDER_ROOT: '1' } },
      ),
      t.runIO,
    );
    expect(result).toEqual({ kind: 'exited', code: 0 });
    expect(t.stdout()).toBe('swapped\n');
    expect(t.collected).toEqual([]);
    expect(t.refused).toEqual(['the output dir was replaced by a symbolic link']);
  });

  it('cannot reach a host port without BUILDER_NETWORK=1, even as root', async () => {
    const server: Server = await new Promise((ok) => {
      const s = createServer((c) => c.on('error', () => undefined).end('hello\n')).listen(0, '127.0.0.1', () => ok(s));
    });
    try {
      const port = (server.address() as { port: number }).port;
      const { out } = await asRoot(`
        (exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null && echo CONNECTED
        (exec 3<>/dev/tcp/10.0.2.2/${port}) 2>/dev/null && echo CONNECTED-OUT
        echo "$(cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ')"`);
      expect(out).toBe('lo\n');
    } finally {
      server.close();
    }
  });
});
