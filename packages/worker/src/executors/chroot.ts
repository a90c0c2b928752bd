import { debianBaseStamp, describeDebianBase } from '../environment/dpkg.ts';
import type { BaseProbe } from '../environment/recorder.ts';
import {
  chownSync,
  existsSync,
  lchownSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Assignment, RunResult, RunUsage, Logger } from '@builder/protocol';
import { describeError } from '../errors.ts';
import {
  cgroupUsage,
  createCgroup,
  findCgroups,
  killAndRemoveCgroup,
  oomKilled,
  type RunCgroup,
} from './chroot-cgroup.ts';
import { AptCache } from './chroot-apt-cache.ts';
import { readStamp, shiftRootfs } from './chroot-idmap.ts';
import { mountsUnder, unmountUnder } from './chroot-mounts.ts';
import { type ChrootOptions, checkRootfs } from './chroot-options.ts';
import { seccompFilter } from './chroot-seccomp.ts';
import { bwrapArgs, ENTER, envFile, INSIDE, SETUP, STEP_FILES, type Step } from './chroot-setup.ts';
import { passedEnv, jobVariables, sandboxHostname, secretVariables } from './job-env.ts';
import { collectOutput, runJobProcess } from './job-process.ts';
import type { Executor, ExecutorDeps, RunIO } from './types.ts';

export { INSIDE };
/** `<runId>-<attempt>`: run dirs and cgroups; the only names cleanup() touches. */
const RUN_DIR = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-\d+$/i;
/** For the setup (host tools, as root): fixed, never the job's. */
const SETUP_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } as const;
/** Where each sandbox mounts its overlay, in its own mount namespace (see SETUP). */
const MOUNT_POINT = '/run/builder-sandbox';
const PATH_DIRS = SETUP_ENV.PATH.split(':');
const JOB_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The worker's package cache for prepare steps, in its --work-dir (see chroot-apt-cache.ts). */
const APT_CACHE = 'apt-cache';
/** Worker environment a job may see besides its own variables. */
const PASSED_ENV = /^(LANG|LANGUAGE|TZ|LC_[A-Z_]+)$/;

export interface ChrootExecutorDeps extends ExecutorDeps {
  readonly chroot: ChrootOptions;
}

/**
 * Debian/Ubuntu: each job in a copy-on-write overlay of a read-only base rootfs, entered with
 * pivot_root by bubblewrap in new user, mount, pid, uts, ipc, cgroup (and, unless the run sets
 * BUILDER_NETWORK=1, net) namespaces, under a seccomp filter, inside a cgroup with memory, pids
 * and CPU limits; all of it removed after. The user namespace maps the sandbox's ids onto
 * `--id-range`, so even a root job (BUILDER_ROOT=1) is an unprivileged uid on the host.
 */
export class ChrootExecutor implements Executor {
  readonly name = 'chroot';
  readonly #o: ChrootOptions;
  readonly #deps: ChrootExecutorDeps;
  readonly #seccomp = seccompFilter();
  /** The base known to be owned by the id range (checked once per base; cleanup() rescans it all). */
  #shiftedBase: string | undefined;
  readonly #aptCache: AptCache;

  constructor(deps: ChrootExecutorDeps) {
    this.#deps = deps;
    this.#o = deps.chroot;
    this.#aptCache = new AptCache(join(deps.workDir, APT_CACHE), deps.log);
  }

  /**
   * Shift what of the base is not owned by the id range yet: all of it the first time, and all of
   * a base the worker has not used yet (a refreshed base: apt ran in it as the host's root).
   */
  #shiftBase(base: string, full: boolean): void {
    if (this.#shiftedBase === base && !full) return;
    const stamp = readStamp(base);
    const { start, count } = this.#o.idRange;
    if (full || this.#shiftedBase !== undefined || stamp?.start !== start || stamp.count !== count) {
      const changed = shiftRootfs(base, this.#o.idRange);
      if (changed > 0) this.#deps.log.info('chroot.base_shifted', { root: base, changed, start });
    }
    this.#shiftedBase = base;
  }

  async cleanup(): Promise<void> {
    checkRootfs(this.#o.root);
    if (!PATH_DIRS.some((d) => existsSync(join(d, 'bwrap')))) {
      throw new Error('the chroot executor needs bubblewrap: apt-get install bubblewrap');
    }
    this.#shiftBase(realpathSync(this.#o.root), true);
    await mkdir(this.#deps.workDir, { recursive: true });
    const log = this.#deps.log;
    const entries = (await readdir(this.#deps.workDir)).filter((e) => RUN_DIR.test(e));
    const names = new Set(entries);
    // a crashed worker's jobs still run: their cgroups find them all (unshare, pid 1, the job)
    for (const [name, cg] of findCgroups(RUN_DIR)) {
      if (!names.has(name)) continue;
      log.info('chroot.stale_cgroup_removed', { cgroup: cg.dirs.join(' ') });
      const left = await killAndRemoveCgroup(cg);
      if (left.length) log.error('chroot.stale_cgroup_not_removed', { cgroups: left });
    }
    for (const entry of entries) {
      const dir = join(this.#deps.workDir, entry);
      log.info('chroot.stale_sandbox_removed', { dir });
      await this.#removeRunDir(dir, log, () => undefined);
    }
    this.#aptCache.removePartial();
    // anything else mounted under the work dir (by hand, by an older worker)
    unmountUnder(this.#deps.workDir, (text) => log.error('chroot.unmount_failed', { error: text }));
  }

  base(): BaseProbe {
    const root = this.#o.root;
    return { stamp: () => debianBaseStamp(root), describe: () => describeDebianBase(root) };
  }

  async run(job: Assignment, io: RunIO): Promise<RunResult> {
    const name = `${job.runId}-${job.attempt}`;
    const dir = join(this.#deps.workDir, name);
    const asRoot = job.params.BUILDER_ROOT === '1';
    const network = job.params.BUILDER_NETWORK === '1';
    const [uid, gid] = asRoot ? [0, 0] : [this.#o.uid, this.#o.gid];
    let cg: RunCgroup | undefined;
    let base: string;
    let seeded = 0;
    try {
      try {
        // once per run: a base that `debian/mkroot --refresh` swaps in meanwhile is the next run's
        base = realpathSync(this.#o.root);
        this.#shiftBase(base, false);
        this.#prepare(dir, job, uid, gid, io);
        if (job.prepare !== undefined) seeded = this.#aptCache.seed(base, join(dir, 'upper'));
        if (io.source) {
          // checked out by the worker (outside, with network), then the job's user's to build in
          const source = join(dir, 'builder', 'source');
          await io.source.checkout(source);
          const root = this.#o.idRange.start;
          chownTree(source, root + uid, root + gid);
        }
        if (io.inputs) {
          // fetched by the worker (outside, SHA-256 checked); the sandbox's root owns them, the job reads them
          const input = join(dir, 'builder', 'input');
          await io.inputs.place(input);
          const root = this.#o.idRange.start;
          chownTree(input, root, root);
        }
        cg = createCgroup(name, this.#o);
      } catch (err) {
        return { kind: 'error', message: `cannot set up the chroot sandbox: ${describeError(err)}` };
      }
      const direct = (text: string) => text.startsWith('#!');
      const build: StepSpec = { step: 'build', network, asRoot, uid, gid, direct: direct(job.script) };
      const steps: StepSpec[] = [build];
      if (job.prepare !== undefined) {
        steps.unshift({ step: 'prepare', network: true, asRoot: true, uid: 0, gid: 0, direct: direct(job.prepare) });
      }
      let result: RunResult = { kind: 'error', message: 'no step ran' };
      // sampled per step (the cgroup's own figures, where it has them, count both steps): CPU adds up
      let before: RunUsage | undefined;
      let sampled: RunUsage | undefined;
      const sample = (u: RunUsage): void => {
        sampled = before
          ? {
              ...u,
              cpuMs: before.cpuMs + u.cpuMs,
              peakMemoryBytes: Math.max(before.peakMemoryBytes ?? 0, u.peakMemoryBytes ?? 0) || null,
            }
          : u;
      };
      for (const [i, step] of steps.entries()) {
        if (job.prepare !== undefined) io.note(stepNote(step, seeded));
        // the worker hears "started" once, from the first step
        before = sampled;
        const stepIo = { ...io, usage: sample, ...(i > 0 && { started: () => undefined }) };
        result = await this.#step(dir, base, cg, job, step, stepIo);
        if (result.kind === 'error' || step.step === 'build') break;
        if (result.kind !== 'exited' || result.code !== 0) {
          io.note('[builder] the prepare step failed: the build step does not run');
          break;
        }
        await this.#harvest(base, dir, io);
        if (io.signal.aborted) break;
      }
      if (result.kind === 'error') return result;
      // the cgroup counted every process of the run, also those that left the job's process tree
      const usage = cgroupUsage(cg, sampled);
      if (usage) io.usage?.(usage);
      // nothing of the sandbox may run while its output is read: a root job owns /builder and
      // could swap output/ for a link into the host between collectOutput's check and the reading
      const gone = await this.#removeCgroup(cg, io.log, (text) => io.note(text));
      cg = undefined;
      if (gone) await collectOutput(io, join(dir, 'builder', 'output'));
      else io.refuseOutput('the sandbox could not be stopped, so processes of the job may still change its output');
      return result;
    } finally {
      await this.#tearDown(dir, cg, io.log, (text) => io.note(text));
    }
  }

  /** One step of the job in a sandbox over the run's overlay: its result, or an error if the sandbox did not start. */
  async #step(dir: string, base: string, cg: RunCgroup, job: Assignment, s: StepSpec, io: RunIO): Promise<RunResult> {
    const spec = {
      hostname: sandboxHostname(job),
      network: s.network,
      asRoot: s.asRoot,
      direct: s.direct,
      step: s.step,
    };
    const { start, count } = this.#o.idRange;
    const args = [
      ...['-c', ENTER, 'builder-enter', String(cg.procsFiles.length), ...cg.procsFiles],
      ...['unshare', '--mount', '--propagation', 'private', '/bin/sh', '-c', SETUP, 'builder-setup'],
      ...[dir, base, MOUNT_POINT, s.network ? '1' : '0', String(start), String(count), String(s.uid), String(s.gid)],
      ...bwrapArgs(spec, MOUNT_POINT),
    ];
    const secrets = secretVariables(job);
    const fd6 = Object.keys(secrets).length > 0 ? envFile(secrets) : undefined;
    // what the step before left: SETUP makes the fifos anew, and `started` must be this step's
    for (const f of ['started', 'info', 'go', 'setup.log']) rmSync(join(dir, f), { force: true });
    let result = await runJobProcess(
      '/bin/sh',
      args,
      { cwd: dir, env: SETUP_ENV, more: s.step === 'prepare', ...(fd6 !== undefined && { fd6 }) },
      io,
    );
    if (!started(dir)) {
      const why = readSetupLog(dir) || describeResult(result);
      return { kind: 'error', message: `cannot set up the chroot sandbox: ${why}` };
    }
    // bwrap reports the job's status as an exit code: 128+N is signal N when we know one was sent
    if (result.kind === 'exited' && result.code > 128 && result.code < 128 + 32) {
      const oom = oomKilled(cg);
      if (oom) io.note('[builder] the job was killed by the memory limit (--memory-limit)');
      if (oom || io.signal.aborted) result = { kind: 'signalled', signal: signalName(result.code - 128) };
    }
    return result;
  }

  /** After a prepare step: what apt downloaded goes into the worker's package cache for the next jobs. */
  async #harvest(base: string, dir: string, io: RunIO): Promise<void> {
    try {
      const { added, refused } = await this.#aptCache.harvest(base, join(dir, 'upper'));
      if (added.length > 0) io.note(`[builder] package cache: ${added.length} new .deb(s) kept for the next jobs`);
      if (refused.length > 0) {
        io.note(
          `[builder] package cache: ${refused.length} .deb(s) not kept (not in the base's apt indexes as downloaded: refresh the base with debian/mkroot --refresh)`,
        );
      }
    } catch (err) {
      io.note(`[builder] package cache: cannot update ${this.#aptCache.dir}: ${describeError(err)}`);
    }
  }

  /**
   * RUN/ (root's, 0700): upper/ and ovl/ for the overlay, seccomp (the filter bwrap loads), builder/ (/builder inside) with script.sh, env, and work/ and
   * output/ owned by the job's user. Owners are host ids: START+id is id inside, so upper/ (the
   * sandbox's /) and builder/ belong to its root. Synchronous: a handful of tiny syscalls.
   */
  #prepare(dir: string, job: Assignment, uid: number, gid: number, io: RunIO): void {
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') mkdirSync(this.#deps.workDir, { recursive: true });
      else if (code === 'EEXIST' && mountsUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true });
      else throw err;
      mkdirSync(dir, { mode: 0o700 });
    }
    mkdirSync(MOUNT_POINT, { recursive: true, mode: 0o755 });
    const root = this.#o.idRange.start;
    // upper/builder: the mount point of /builder, made here rather than by a mkdir in SETUP
    for (const sub of ['upper', 'upper/builder', 'ovl']) mkdirSync(join(dir, sub), { mode: 0o755 });
    // the overlay's / takes its owner and mode from upper/: the base's /, root's inside
    const base = statSync(this.#o.root);
    chownSync(join(dir, 'upper'), base.uid, base.gid);
    writeFileSync(join(dir, 'seccomp'), this.#seccomp, { mode: 0o600 });
    const b = join(dir, 'builder');
    mkdirSync(b, { mode: 0o755 });
    writeFileSync(join(b, 'script.sh'), job.script, { mode: 0o755 });
    writeFileSync(join(b, STEP_FILES.build.env), envFile(this.#jobEnv(job, uid, io)), { mode: 0o644 });
    const files = [b, join(b, STEP_FILES.build.script), join(b, STEP_FILES.build.env)];
    if (job.prepare !== undefined) {
      writeFileSync(join(b, STEP_FILES.prepare.script), job.prepare, { mode: 0o755 });
      writeFileSync(join(b, STEP_FILES.prepare.env), envFile(this.#jobEnv(job, 0, io, '/root')), { mode: 0o644 });
      files.push(join(b, STEP_FILES.prepare.script), join(b, STEP_FILES.prepare.env));
    }
    for (const file of files) chownSync(file, root, root);
    for (const sub of ['work', 'output']) {
      mkdirSync(join(b, sub), { mode: 0o755 });
      chownSync(join(b, sub), root + uid, root + gid);
    }
  }

  #jobEnv(job: Assignment, uid: number, io: RunIO, home: string = INSIDE.work): Record<string, string> {
    const env = passedEnv(this.#deps.env, PASSED_ENV);
    const user = uid === 0 ? 'root' : 'builder';
    return {
      ...env,
      PATH: JOB_PATH,
      HOME: home,
      USER: user,
      LOGNAME: user,
      SHELL: '/bin/sh',
      TMPDIR: '/tmp',
      ...jobVariables(
        job,
        this.#deps.platform,
        INSIDE.output,
        io.source && { run: io.source, dir: INSIDE.source },
        io.inputs && INSIDE.input,
      ),
    };
  }

  /** Kill what is left (cgroup), unmount what is left (backstop), remove the run dir. */
  async #tearDown(dir: string, cg: RunCgroup | undefined, log: Logger, note: (text: string) => void): Promise<void> {
    await this.#removeCgroup(cg, log, note);
    await this.#removeRunDir(dir, log, note);
  }

  /** Kill every process of the run and remove its cgroup; false if some of it is left. */
  async #removeCgroup(cg: RunCgroup | undefined, log: Logger, note: (text: string) => void): Promise<boolean> {
    if (!cg) return true;
    const left = await killAndRemoveCgroup(cg);
    if (left.length === 0) return true;
    log.error('chroot.cgroup_not_removed', { cgroups: left });
    note(`[builder] teardown: cannot remove cgroup ${left.join(', ')}; see the worker log`);
    return false;
  }

  async #removeRunDir(dir: string, log: Logger, note: (text: string) => void): Promise<void> {
    const left = unmountUnder(dir, (text) => log.error('chroot.unmount_failed', { error: text }));
    if (left.length) {
      // rm -rf through a mount would delete what is mounted there (the base rootfs!)
      note(`[builder] teardown: not removing ${dir}: still mounted: ${left.join(', ')}`);
      return;
    }
    await rm(dir, { recursive: true, force: true }).catch((err: unknown) =>
      log.warn('executor.run_dir_not_removed', { dir, error: err }),
    );
  }
}

/** How one step runs: as whom, with or without network. */
interface StepSpec {
  readonly step: Step;
  readonly network: boolean;
  readonly asRoot: boolean;
  readonly uid: number;
  readonly gid: number;
  readonly direct: boolean;
}

function stepNote(s: StepSpec, seeded: number): string {
  const who = s.asRoot ? 'root' : `uid ${s.uid}`;
  const net = s.network ? 'with network' : 'without network';
  if (s.step === 'prepare') return `[builder] prepare step: as root, ${net} (package cache: ${seeded} .deb(s))`;
  return `[builder] build step: as ${who}, ${net}`;
}

/** Give a tree (never following its links) to the sandbox's user. */
function chownTree(path: string, uid: number, gid: number): void {
  lchownSync(path, uid, gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) chownTree(child, uid, gid);
    else lchownSync(child, uid, gid);
  }
}

/** INNER wrote RUN/started: the sandbox was complete and the job's own code began. */
function started(dir: string): boolean {
  try {
    return statSync(join(dir, 'started')).size > 0;
  } catch {
    return false;
  }
}

function readSetupLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'setup.log'), 'utf8').trim().split('\n').slice(-5).join('; ');
  } catch {
    return '';
  }
}

function describeResult(result: RunResult): string {
  if (result.kind === 'exited') return `the setup exited ${result.code}`;
  if (result.kind === 'signalled') return `the setup was killed by ${result.signal}`;
  if (result.kind === 'error') return result.message;
  return result.kind;
}

function signalName(n: number): string {
  for (const [name, value] of Object.entries(constants.signals)) if (value === n) return name;
  return `signal ${n}`;
}
