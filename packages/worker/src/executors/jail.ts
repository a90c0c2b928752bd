import { describeJailBase, jailBaseStamp } from '../environment/freebsd.ts';
import type { BaseProbe } from '../environment/recorder.ts';
import { accessSync, constants } from 'node:fs';
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { Assignment, RunResult, Logger } from '@builder/protocol';
import { describeError } from '../errors.ts';
import { AddressPool } from './jail-addresses.ts';
import { CommandError, type CommandRunner, commandRunner } from './jail-command.ts';
import { passedEnv, jobVariables, sandboxHostname, secretVariables } from './job-env.ts';
import { collectOutput, runJobProcess } from './job-process.ts';
import { findLeftovers } from './jail-leftovers.ts';
import type { JailOptions } from './jail-options.ts';
import { JAIL_NAME, type Sandbox, sandbox } from './jail-sandbox.ts';
import type { Executor, ExecutorDeps, RunIO } from './types.ts';

/** Inside every jail: the run's directory (root-owned), the job's cwd and its output dir. */
export const INSIDE = { dir: '/builder', work: '/builder/work', output: '/builder/output' } as const;
/**
 * Said explicitly though they are jail(8)'s defaults: a new jail's defaults follow the host's
 * legacy security.jail.*_allowed sysctls, which an admin may have opened for other jails. A root
 * in the job's jail (a setuid binary of the base is enough to get there) must not share the
 * host's SysV IPC, open raw sockets, mount, clear file flags, use other socket families or
 * rename the jail.
 */
const JAIL_DENY = [
  'allow.set_hostname=0',
  'allow.sysvipc=0',
  'allow.raw_sockets=0',
  'allow.chflags=0',
  'allow.mount=0',
  'allow.socket_af=0',
] as const;
const COMMAND_PATH = '/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin';
const JOB_PATH = '/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin';
/** Worker environment a job may see besides its own variables. */
const PASSED_ENV = /^(LANG|LANGUAGE|TZ|LC_[A-Z_]+)$/;

export interface JailExecutorDeps extends ExecutorDeps {
  readonly jail: JailOptions;
  /** The seam the tests replace the system with; default: spawn with `env`'s PATH. */
  readonly run?: CommandRunner | undefined;
}

/**
 * FreeBSD: each job in its own jail on a fresh ZFS clone (or copy) of a base system, with its own
 * hostname and address, a restricted devfs, run as an unprivileged user; all of it removed after.
 */
/** A jail has one user and one network for the whole job (freebsd/README.md, "Prepare steps"). */
const PREPARE_REFUSED =
  'the jail executor cannot run a prepare step (root with network, then the build without): ' +
  'install build dependencies in the base snapshot, or run the job on a chroot worker';

export class JailExecutor implements Executor {
  readonly name = 'jail';
  readonly #o: JailOptions;
  readonly #deps: JailExecutorDeps;
  readonly #run: CommandRunner;
  readonly #path: string;
  readonly #addresses: AddressPool;

  constructor(deps: JailExecutorDeps) {
    this.#deps = deps;
    this.#o = deps.jail;
    this.#path = deps.env.PATH ?? COMMAND_PATH;
    // the worker's own environment: these are the host's tools, run as the worker
    this.#run = deps.run ?? commandRunner({ ...deps.env, PATH: this.#path, LC_ALL: 'C' });
    this.#addresses = new AddressPool(this.#o.ipFirst, this.#o.ipLast);
  }

  async cleanup(): Promise<void> {
    await mkdir(this.#o.root, { recursive: true });
    const found = await findLeftovers(this.#run, this.#o, JAIL_NAME);
    for (const address of found.aliases) {
      this.#deps.log.info('jail.stale_address_removed', { address });
      await this.#try(['ifconfig', this.#o.interface as string, 'inet', address, '-alias'], this.#deps.log);
    }
    for (const sandbox of found.sandboxes) {
      this.#deps.log.info('jail.stale_jail_removed', { jail: sandbox.name, path: sandbox.path });
      await this.#tearDown(sandbox, this.#deps.log, () => undefined);
    }
  }

  base(): BaseProbe {
    const base = this.#o.base;
    return { stamp: () => jailBaseStamp(this.#run, base), describe: () => describeJailBase(this.#run, base) };
  }

  async run(job: Assignment, io: RunIO): Promise<RunResult> {
    // a job built without the source it asked for would be worse than one not built
    if (io.source) return { kind: 'error', message: 'the jail executor cannot check out a source yet' };
    // nor build without the files it was given
    if (io.inputs) return { kind: 'error', message: 'the jail executor cannot place inputs yet ($BUILDER_INPUT)' };
    if (job.prepare !== undefined) return { kind: 'error', message: PREPARE_REFUSED };
    const address = this.#addresses.take();
    if (address === undefined) return { kind: 'error', message: 'no free address in --jail-ip-range' };
    const name = `builder-${job.runId.slice(0, 8).toLowerCase()}-${job.attempt}`;
    const s = sandbox(this.#o, name, address);
    try {
      try {
        await this.#setUp(s, job);
      } catch (err) {
        return { kind: 'error', message: `cannot set up jail ${name}: ${describeError(err)}` };
      }
      const [command, ...args] = this.#jexec(s, job) as [string, ...string[]];
      const result = await runJobProcess(command, args, { cwd: '/', env: this.#jobEnv(job) }, io);
      // Nothing of the job may run while its output is read from the host: a process that left
      // the job's group (setsid, a daemon) could swap a file there for a symlink into the host
      // between the check and the read. jail -r kills every process in the jail; the files stay.
      if (await this.#removeJail(s, io.log, (text) => io.note(text)))
        await collectOutput(io, join(s.path, INSIDE.output));
      else io.refuseOutput('the jail could not be removed, so processes of the job may still change its output');
      return result;
    } finally {
      await this.#tearDown(s, io.log, (text) => io.note(text));
      // only now: the address may still be on the interface until the jail is gone
      if (!s.alias && !s.jail) this.#addresses.release(address);
      else io.log.error('jail.address_still_reserved', { address, hint: 'reserved until the jail is removed' });
    }
  }

  /** The whole setup, in order; each step marks what it made so teardown can undo it. */
  async #setUp(s: Sandbox, job: Assignment): Promise<void> {
    const o = this.#o;
    if (o.base.kind === 'zfs') {
      await this.#run(['zfs', 'clone', '-o', `mountpoint=${s.path}`, o.base.snapshot, s.dataset as string]);
      s.cloned = true;
    } else {
      await mkdir(o.root, { recursive: true });
      s.copied = true; // a copy that failed half-way must go too
      await this.#run(['cp', '-a', o.base.dir, s.path]);
    }
    await this.#prepareRunDir(s.path, job.script);
    await this.#run(['mount', '-t', 'devfs', '-o', `ruleset=${o.devfsRuleset}`, 'devfs', join(s.path, 'dev')]);
    s.devfs = true;
    if (o.interface !== undefined) {
      await this.#run(['ifconfig', o.interface, 'inet', `${s.address}/32`, 'alias']);
      s.alias = true;
    }
    await this.#run([
      'jail',
      '-c',
      `name=${s.name}`,
      `path=${s.path}`,
      `host.hostname=${sandboxHostname(job)}.builder`,
      `ip4.addr=${s.address}`,
      'ip6=disable',
      `devfs_ruleset=${o.devfsRuleset}`,
      'enforce_statfs=2',
      'children.max=0',
      ...JAIL_DENY,
      'persist',
    ]);
    s.jail = true;
  }

  /**
   * /builder stays root's, so the job cannot swap its output dir for a symlink into the host;
   * work/ and output/ belong to the jail user (its uid from the jail's own passwd).
   */
  async #prepareRunDir(root: string, script: string): Promise<void> {
    const { uid, gid } = await jailUser(root, this.#o.user);
    const dir = join(root, INSIDE.dir);
    await mkdir(dir, { mode: 0o755 });
    await writeFile(join(dir, 'script.sh'), script, { mode: 0o755 });
    for (const sub of [INSIDE.work, INSIDE.output]) {
      await mkdir(join(root, sub), { mode: 0o755 });
      await chown(join(root, sub), uid, gid);
    }
  }

  /**
   * jexec starts in the jail's / (jail_attach chdirs there), hence the relative cd: the same
   * command works for the test fakes, which run it on the host from the jail's path.
   */
  #jexec(s: Sandbox, job: Assignment): string[] {
    const run = job.script.startsWith('#!') ? '../script.sh' : '/bin/sh ../script.sh';
    const jexec = which('jexec', this.#path);
    return [jexec, '-U', this.#o.user, s.name, '/bin/sh', '-c', `cd ${INSIDE.work.slice(1)} && exec ${run}`];
  }

  #jobEnv(job: Assignment): Record<string, string> {
    const env = passedEnv(this.#deps.env, PASSED_ENV);
    return {
      ...env,
      PATH: JOB_PATH,
      HOME: INSIDE.work,
      USER: this.#o.user,
      LOGNAME: this.#o.user,
      SHELL: '/bin/sh',
      ...jobVariables(job, this.#deps.platform, INSIDE.output),
      ...secretVariables(job),
    };
  }

  /** Undo what exists, last made first. A failed step is reported and the rest still tried. */
  async #tearDown(s: Sandbox, log: Logger, note: (text: string) => void): Promise<void> {
    const step = (argv: string[]) => this.#step(argv, log, note);
    await this.#removeJail(s, log, note);
    if (s.alias && (await step(['ifconfig', this.#o.interface as string, 'inet', s.address as string, '-alias'])))
      s.alias = false;
    if (s.devfs && (await step(['umount', '-f', join(s.path, 'dev')]))) s.devfs = false;
    if (s.cloned && (await step(['zfs', 'destroy', '-f', s.dataset as string]))) s.cloned = false;
    if (s.copied) {
      // rm -rf through a devfs still mounted would delete the host's device nodes
      if (s.devfs) note(`[builder] teardown: not removing ${s.path}: its devfs is still mounted`);
      else if ((await step(['chflags', '-R', '0', s.path])) && (await step(['rm', '-rf', s.path]))) s.copied = false;
    }
  }

  /** `jail -r`: every process in the jail killed, the jail gone (its files stay); true if it is gone. */
  async #removeJail(s: Sandbox, log: Logger, note: (text: string) => void): Promise<boolean> {
    if (s.jail && (await this.#step(['jail', '-r', s.name], log, note))) s.jail = false;
    return !s.jail;
  }

  /** One teardown command; a failure is said in the console (details in the worker log). */
  async #step(argv: string[], log: Logger, note: (text: string) => void): Promise<boolean> {
    const ok = await this.#try(argv, log);
    if (!ok) note(`[builder] teardown: \`${argv.join(' ')}\` failed; see the worker log`);
    return ok;
  }

  async #try(argv: string[], log: Logger): Promise<boolean> {
    try {
      await this.#run(argv);
      return true;
    } catch (err) {
      log.error('jail.teardown_step_failed', {
        command: argv.join(' '),
        exitCode: err instanceof CommandError ? err.exitCode : null,
        error: describeError(err),
      });
      return false;
    }
  }
}

/** The jail user's uid and gid, from the jail's passwd (the host's may not have it, or differ). */
async function jailUser(root: string, user: string): Promise<{ uid: number; gid: number }> {
  const passwd = join(root, 'etc/passwd');
  let text: string;
  try {
    text = await readFile(passwd, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${passwd}: ${describeError(err)}`);
  }
  for (const line of text.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name === user && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) };
  }
  throw new Error(`user "${user}" not found in ${passwd}: add it to the base (see freebsd/base-snapshot.md)`);
}

/** The job's process is jexec itself, started with the job's environment: find it on the worker's PATH. */
function which(command: string, path: string): string {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {
      // not here
    }
  }
  return `/usr/sbin/${command}`;
}
