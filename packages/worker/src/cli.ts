import { createLogger } from '@builder/protocol';
import { Command, CommanderError, Option } from 'commander';
import { ExitCode, UsageError } from './errors.ts';
import { createExecutor, EXECUTORS } from './executors/index.ts';
import { CHROOT_DEFAULTS } from './executors/chroot-options.ts';
import { JAIL_DEFAULTS } from './executors/jail-options.ts';
import { compileOptions, DEFAULTS, type WorkerOptionsInput } from './options.ts';
import { handleSignals } from './signals.ts';
import { Worker } from './worker.ts';

const HELP_AFTER = `
Environment:
  BUILDER_REMOTE, BUILDER_TOKEN   defaults for --remote and --token
  BUILDER_CA                      default for --ca
  NODE_EXTRA_CA_CERTS             a PEM file of CAs Node trusts besides the public ones

TLS: an https:// remote whose certificate does not verify stops the worker at its first
connection (exit 4, saying why and how to trust the CA). Once it has been connected, a refused
certificate (a renewal gone wrong) is logged at every attempt and retried: running jobs go on.

Signals:
  SIGTERM/SIGINT once    drain: reject new runs, finish running ones, exit 0
  SIGTERM/SIGINT twice   cancel running jobs, report them, exit

Exit codes:
  0  stopped after a drain
  1  stopped by a second signal, or an unexpected failure
  2  bad command line
  4  the server refused the worker (bad token, forbidden, protocol version), or its
     TLS certificate was refused at the first connection`;

/** Thrown instead of exiting when commander printed --help or --version. */
class HelpShown extends Error {}

export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): WorkerOptionsInput {
  const program = new Command('builder-worker')
    .description('Run builder jobs for a builder-server.')
    .addOption(new Option('--remote <url>', 'server URL, e.g. http://server:8330 (env BUILDER_REMOTE)'))
    .addOption(new Option('--token <token>', 'worker token (env BUILDER_TOKEN)'))
    .addOption(new Option('--platform <name>', 'platform this worker builds for, e.g. debian-12'))
    .addOption(new Option('--name <name>', 'worker name (default: the hostname)'))
    .addOption(new Option('--capacity <n>', `jobs run at once (default ${DEFAULTS.capacity})`))
    .addOption(
      new Option(
        '--executor <name>',
        `how jobs run: ${Object.keys(EXECUTORS).join(', ')} (default ${DEFAULTS.executor})`,
      ),
    )
    .addOption(
      new Option('--label <label>', 'a label for job matching (repeatable)').argParser(
        (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
      ),
    )
    .addOption(new Option('--work-dir <dir>', 'where run directories go (default: $TMPDIR/builder-worker/NAME)'))
    .addOption(
      new Option(
        '--git-timeout <seconds>',
        `longest a fetch of a job's source may take (default ${DEFAULTS.gitTimeoutSec})`,
      ),
    )
    .addOption(
      new Option(
        '--git-mirror-days <days>',
        `remove a source mirror no run used for this many days, at start and daily; 0: never (default ${DEFAULTS.gitMirrorDays})`,
      ),
    )
    .addOption(
      new Option('--reconnect-max-ms <ms>', `longest wait between reconnects (default ${DEFAULTS.reconnectMaxMs})`),
    )
    .addOption(
      new Option('--ca <file>', 'also trust this CA (PEM) for an https:// remote, e.g. a private CA (env BUILDER_CA)'),
    )
    .addOption(
      new Option(
        '--keepalive <seconds>',
        `ping the server at least this often, whatever its lease (default ${DEFAULTS.keepaliveSec}; keep it under proxy idle timeouts)`,
      ),
    )
    .addOption(new Option('--json-logs', 'JSON log lines even on a terminal'))
    .addOption(
      new Option('--jail-zfs-snapshot <snap>', 'jail: clone this snapshot per job, e.g. zroot/builder/base@clean'),
    )
    .addOption(new Option('--jail-base-dir <dir>', 'jail: copy this base system per job (without ZFS)'))
    .addOption(new Option('--jail-root <dir>', `jail: where jail roots go (default ${JAIL_DEFAULTS.root})`))
    .addOption(
      new Option('--jail-ip-range <first-last>', `jail: an address per running job (default ${JAIL_DEFAULTS.ipRange})`),
    )
    .addOption(
      new Option('--jail-user <user>', `jail: unprivileged user the job runs as (default ${JAIL_DEFAULTS.user})`),
    )
    .addOption(
      new Option('--jail-devfs-ruleset <n>', `jail: devfs ruleset for /dev (default ${JAIL_DEFAULTS.devfsRuleset})`),
    )
    .addOption(new Option('--jail-interface <if>', "jail: add each job's address to this interface, e.g. lo1"))
    .addOption(
      new Option('--root <dir>', `chroot: the base rootfs, made by debian/mkroot (default ${CHROOT_DEFAULTS.root})`),
    )
    .addOption(
      new Option(
        '--chroot-user <user>',
        `chroot: user (name in the rootfs, or UID:GID) the job runs as (default ${CHROOT_DEFAULTS.user})`,
      ),
    )
    .addOption(new Option('--memory-limit <size>', 'chroot: memory limit per job, e.g. 2G (default none)'))
    .addOption(new Option('--pids-limit <n>', `chroot: processes per job (default ${CHROOT_DEFAULTS.pidsLimit})`))
    .addOption(new Option('--cpu-shares <n>', 'chroot: cgroup cpu.shares per job, 1024 = normal (default unset)'))
    .addOption(
      new Option(
        '--id-range <start:count>',
        "chroot: host uids/gids the sandbox's user namespace maps its 0… to (default root's in /etc/subuid)",
      ),
    )
    .addHelpText('after', HELP_AFTER)
    .helpOption('-h, --help', 'show this help')
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined });
  try {
    program.parse([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) throw new HelpShown();
      throw new UsageError(err.message.replace(/^error: /, '').split('\n')[0] ?? err.message);
    }
    throw err;
  }
  const o = program.opts<Record<string, string | string[] | boolean | undefined>>();
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  return {
    remote: str(o.remote) ?? env.BUILDER_REMOTE,
    token: str(o.token) ?? env.BUILDER_TOKEN,
    platform: str(o.platform),
    name: str(o.name),
    capacity: str(o.capacity),
    executor: str(o.executor),
    labels: Array.isArray(o.label) ? o.label : [],
    workDir: str(o.workDir),
    gitTimeoutSec: str(o.gitTimeout),
    gitMirrorDays: str(o.gitMirrorDays),
    jail: {
      zfsSnapshot: str(o.jailZfsSnapshot),
      baseDir: str(o.jailBaseDir),
      root: str(o.jailRoot),
      ipRange: str(o.jailIpRange),
      user: str(o.jailUser),
      devfsRuleset: str(o.jailDevfsRuleset),
      interface: str(o.jailInterface),
    },
    chroot: {
      root: str(o.root),
      user: str(o.chrootUser),
      memoryLimit: str(o.memoryLimit),
      pidsLimit: str(o.pidsLimit),
      cpuShares: str(o.cpuShares),
      idRange: str(o.idRange),
    },
    reconnectMaxMs: str(o.reconnectMaxMs),
    ca: str(o.ca) ?? env.BUILDER_CA,
    keepaliveSec: str(o.keepalive),
    jsonLogs: o.jsonLogs === true ? true : undefined,
  };
}

export interface Outcome {
  readonly exitCode: number;
  /** Set when a second signal stopped the worker: re-raise it so the parent sees it. */
  readonly reraise?: NodeJS.Signals | undefined;
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<Outcome> {
  let input: WorkerOptionsInput;
  let options;
  try {
    input = parseCommandLine(argv, env);
    options = compileOptions(input);
  } catch (err) {
    if (err instanceof HelpShown) return { exitCode: ExitCode.Ok };
    if (err instanceof UsageError) {
      process.stderr.write(`builder-worker: ${err.message} (see --help)\n`);
      return { exitCode: err.exitCode };
    }
    throw err;
  }
  const log = createLogger({
    json: options.jsonLogs ?? !process.stderr.isTTY,
    write: (line) => process.stderr.write(line),
  }).child({ worker: options.name });
  const executor = createExecutor(options.executor, {
    workDir: options.workDir,
    platform: options.platform,
    log: log.child({ executor: options.executor }),
    env,
    jail: options.jail,
    chroot: options.chroot,
  });
  const worker = new Worker({ options, executor, log });
  const signals = handleSignals({
    log,
    drain: () => worker.drain(),
    force: () => void worker.stop('worker stopped by a signal'),
  });
  await worker.start();
  const exitCode = await worker.exited;
  signals.dispose();
  return { exitCode, reraise: signals.forcedBy };
}
