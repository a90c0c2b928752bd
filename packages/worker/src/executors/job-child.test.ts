import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { type JobChild, type JobSpawnOptions, startJobChild } from './job-child.ts';
import { nativeSpawn } from './native.ts';

const dir = mkdtempSync(join(tmpdir(), 'builder-job-child-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
  events: string[];
}

/** Run to the end: what the child printed, how it ended, and in which order exit and close came. */
function finish(child: JobChild, fd6?: string): Promise<Ended> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const events: string[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  if (fd6 !== undefined) child.fd6?.on('error', () => undefined).end(fd6);
  child.on('exit', () => events.push('exit'));
  return new Promise((resolve) =>
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      events.push('close');
      resolve({ code, signal, out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString(), events });
    }),
  );
}

const opts = (over: Partial<JobSpawnOptions> = {}): JobSpawnOptions => ({
  cwd: dir,
  env: { PATH: '/usr/bin:/bin', ONLY: 'this' },
  fd6: false,
  ...over,
});

/** Descriptors above 2 this process has without close-on-exec: any exec passes those on. */
function inheritable(): number[] {
  const O_CLOEXEC = 0o2000000;
  const fds: number[] = [];
  for (const fd of readdirSync('/proc/self/fdinfo')) {
    let info: string;
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // the listing's own descriptor, closed since
    }
    if (Number(fd) > 2 && !(parseInt(/flags:\s+(\d+)/.exec(info)![1]!, 8) & O_CLOEXEC)) fds.push(Number(fd));
  }
  return fds;
}

it('on Linux the worker starts jobs with its posix_spawn (built at install by native/build.mjs)', () => {
  if (process.platform !== 'linux') return;
  expect(nativeSpawn, 'packages/worker/native/spawn.node is missing: run `node native/build.mjs` there').toBeDefined();
});

// Both ways of starting a job must look the same to the job and to runJobProcess.
describe.each([['child_process', null] as const, ...(nativeSpawn ? [['posix_spawn', nativeSpawn] as const] : [])])(
  'a job started through %s',
  (_name, native) => {
    const sh = (script: string, over?: Partial<JobSpawnOptions>) =>
      startJobChild('/bin/sh', ['-c', script], opts(over), native);

    it('gets its cwd, exactly its environment, /dev/null as stdin, stdout and stderr apart', async () => {
      expect(await finish(sh('pwd; env | sort; cat; echo to-err >&2; exit 3'))).toEqual({
        code: 3,
        signal: null,
        out: `${dir}\nONLY=this\nPATH=/usr/bin:/bin\nPWD=${dir}\n`,
        err: 'to-err\n',
        events: ['exit', 'close'],
      });
    });

    it('leads its own session and process group', async () => {
      const child = sh('ps -o pid=,pgid=,sid= -p $$');
      const r = await finish(child);
      expect(r.out.trim().split(/\s+/).map(Number)).toEqual([child.pid, child.pid, child.pid]);
    });

    it('starts with no signal blocked, and SIGPIPE not ignored (Node ignores it)', async () => {
      const r = await finish(startJobChild('/bin/grep', ['-E', '^Sig(Blk|Ign)', '/proc/self/status'], opts(), native));
      const [blocked, ignored] = [/SigBlk:\s+(\w+)/, /SigIgn:\s+(\w+)/].map((re) => BigInt(`0x${re.exec(r.out)![1]}`));
      expect(blocked).toBe(0n);
      expect(ignored! & (1n << BigInt(constants.signals.SIGPIPE - 1))).toBe(0n);
    });

    it('gets no descriptor of the worker but 0-2, and 6 with what is written there when asked', async () => {
      const passed = inheritable();
      const fds = (out: string) =>
        out
          .split('\n')
          .filter(Boolean)
          .map(Number)
          .filter((fd) => !passed.includes(fd))
          .sort((a, b) => a - b);
      expect(fds((await finish(sh('ls /proc/$$/fd'))).out)).toEqual([0, 1, 2]);
      const six = await finish(sh('ls /proc/$$/fd; cat <&6 >&2', { fd6: true }), 'secret=1');
      expect(fds(six.out)).toEqual([0, 1, 2, 6]);
      expect(six.err).toBe('secret=1');
    });

    it('hands over megabytes of output byte for byte, stdout and stderr each whole', async () => {
      // 3 MB on each stream at once, interleaved: many reads, some of the most a wakeup takes
      const r = await finish(
        sh('head -c 3000000 /dev/zero | tr "\\0" o & head -c 3000000 /dev/zero | tr "\\0" e >&2; wait'),
      );
      expect(r.code).toBe(0);
      expect(r.out.length).toBe(3_000_000);
      expect(r.err.length).toBe(3_000_000);
      expect(/^o+$/.test(r.out) && /^e+$/.test(r.err)).toBe(true);
    });

    it('stops reading while its reader is full, so the job waits on its own output, and loses nothing', async () => {
      const child = sh('head -c 8000000 /dev/zero; echo done >&2');
      const err: Buffer[] = [];
      child.stderr.on('data', (c: Buffer) => err.push(c));
      let exited = false;
      child.on('exit', () => (exited = true));
      // nobody reads stdout for a while: far more than its pipe holds is still to come
      await new Promise((r) => setTimeout(r, 300));
      expect(exited).toBe(false);
      expect(Buffer.concat(err).toString()).toBe('');
      let bytes = 0;
      child.stdout.on('data', (c: Buffer) => (bytes += c.length));
      await new Promise((r) => child.once('close', r));
      expect(bytes).toBe(8_000_000);
      expect(Buffer.concat(err).toString()).toBe('done\n');
    });

    it('lets its reader stop early: the job writing on gets an error (or SIGPIPE) and ends', async () => {
      const child = sh('yes');
      await new Promise((r) => child.stdout.once('data', r));
      child.stdout.destroy();
      const r = await finish(child);
      // a pipe whose reader left answers SIGPIPE (EPIPE where ignored: `yes` says so and exits 1);
      // Node's fallback gives a socket pair, which answers ECONNRESET
      expect(r.signal === 'SIGPIPE' || (r.code !== null && r.code > 0)).toBe(true);
    });

    it('reports a signal by name', async () => {
      const r = await finish(sh('kill -TERM $$'));
      expect([r.code, r.signal]).toEqual([null, 'SIGTERM']);
    });

    it("brings the kernel's CPU figure with its exit only when started natively", async () => {
      const child = sh('true');
      expect(child.reportsExitCpu).toBe(native !== null);
      await finish(child);
      expect(child.exitCpuMs === undefined).toBe(native === null);
    });

    it('cannot start what does not exist: an ENOENT error', async () => {
      let err: unknown;
      try {
        const child = startJobChild(join(dir, 'missing'), [], opts(), native);
        // Node says so on an event, the native spawn at once
        err = await new Promise((resolve) => child.once('error', resolve));
      } catch (thrown) {
        err = thrown;
      }
      expect(err).toMatchObject({ code: 'ENOENT' });
    });
  },
);

describe.skipIf(!nativeSpawn)('the native spawn', () => {
  it('refuses a NUL byte in an argument or variable rather than cut the string there', () => {
    expect(() => startJobChild('/bin/sh', ['-c', 'true'], opts({ env: { A: 'x\0y' } }))).toThrow(/NUL byte/);
    expect(() => startJobChild('/bin/sh', ['-c', 'a\0b'], opts())).toThrow(/NUL byte/);
  });

  it.skipIf(!existsSync('/usr/bin/perl'))(
    'gives the job a pipe of 256 KiB as stdout, a plain pipe as stderr',
    async () => {
      // F_GETPIPE_SZ (1032) asked by the job of its own descriptors
      const size = (fd: string) => `perl -e 'open(my $f, ">&=", ${fd}) or die; print fcntl($f, 1032, 0) + 0, "\\n"'`;
      const script = `[ -p /dev/stdout ] && [ -p /dev/stderr ] && echo pipes; ${size('1')}; ${size('2')}`;
      const r = await finish(startJobChild('/bin/sh', ['-c', script], opts()));
      expect([r.out, r.err]).toEqual(['pipes\n262144\n65536\n', '']);
    },
  );

  it('passes on no other descriptor, not even one the worker inherited without close-on-exec', () => {
    // a worker started with fd 3 open (as by a supervisor), which lists its job's descriptors (no
    // pipe in the job's shell: its own ends of one would show while `ls` runs)
    const addon = join(import.meta.dirname, '../../native/spawn.node');
    const script = `
      const { Socket } = require('node:net');
      const fds = require('node:fs').readdirSync('/proc/self/fd').join(' ');
      const [, out] = require(${JSON.stringify(addon)}).spawn(
        '/bin/sh', ['sh', '-c', 'ls /proc/$$/fd'], [], '/', -1, () => {});
      let listed = '';
      new Socket({ fd: out, readable: true, writable: false })
        .on('data', (d) => (listed += d))
        .on('close', () => console.log(fds + '|' + listed.trim().split('\\n').join(' ')));`;
    const r = spawnSync(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
    const [own, job] = r.stdout.toString().trim().split('|');
    expect(own!.split(' ')).toContain('3');
    expect(job).toBe('0 1 2');
  });

  it('hands over the CPU time of the reaped job and of every descendant it waited for', async () => {
    // a job shorter than one /proc sample: the shell waits for a Node that spins until it has used
    // 150 ms of CPU (counted in CPU, not on the clock: a busy machine would give it less)
    const spin =
      'const t = process.cpuUsage(); for (let u = process.cpuUsage(t); u.user + u.system < 150000; u = process.cpuUsage(t));';
    const node = `${JSON.stringify(process.execPath)} -e "${spin}"`;
    const child = startJobChild('/bin/sh', ['-c', `${node}; true`], opts());
    await finish(child);
    expect(child.exitCpuMs).toBeGreaterThanOrEqual(150);
  });

  it('stops a job whose output it cannot read, and says why', async () => {
    const broken = {
      ...nativeSpawn!,
      watch: () => {
        throw new Error("cannot watch the job's output");
      },
    };
    let pid = 0;
    const spy = {
      ...broken,
      spawn: (...a: Parameters<typeof broken.spawn>) => {
        const r = broken.spawn(...a);
        pid = r[0];
        return r;
      },
    };
    expect(() => startJobChild('/bin/sleep', ['30'], opts(), spy)).toThrow(/cannot watch/);
    // killed, and reaped by the module: gone
    for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 10));
    expect(pid).toBeGreaterThan(0);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
  });

  it('reaps what it started: no zombie is left', async () => {
    const child = startJobChild('/bin/sh', ['-c', 'exit 0'], opts());
    await finish(child);
    expect(() => readFileSync(`/proc/${child.pid}/status`)).toThrow(/ENOENT/);
  });
});
