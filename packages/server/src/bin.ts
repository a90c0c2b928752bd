import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { RoleSchema } from '@builder/protocol';
import { formatVacuumReport, vacuum } from './artifacts/retention.ts';
import { addStoreOptions, closeStore, dataDirOption, openStoreFromFlags, storeOptions } from './cli/options.ts';
import { addVerifyCommand } from './cli/verify.ts';
import { compileServerOptions, compileVacuumPolicy, DEFAULTS, type ServerOptionsInput, UsageError } from './options.ts';
import { startServer } from './server.ts';
import { openDb } from './store/db.ts';
import { JobStore } from './store/jobs.ts';
import { createToken, listTokens, revokeToken, WORKER_PATTERN } from './store/tokens.ts';
import { VERSION } from './version.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

// the database, consoles, artifacts and secrets are the server's alone: nothing it creates is
// readable by other users of the host
process.umask(0o077);

const [artifactsOption, s3EndpointOption, s3RegionOption] = storeOptions();
const program = new Command('builder-server')
  .description('builder server: job queue, schedule, worker dispatch and the WebSocket/HTTP endpoint')
  .version(VERSION)
  .addOption(dataDirOption())
  .option('--listen <host:port>', 'address for HTTP and WebSocket', DEFAULTS.listen)
  .option('--lease <duration>', 'a run is lost when its worker is silent this long', DEFAULTS.lease)
  .option('--heartbeat <duration>', 'how often workers send heartbeats (default: lease / 4)')
  .option('--missed-grace <duration>', 'a schedule slot handled later than this is missed', DEFAULTS.missedGrace)
  .option('--json-logs', 'log JSON lines even on a terminal')
  .option(
    '--alert-webhook <url>',
    'POST a JSON alert here on failure, recovery, lost, missed (repeatable)',
    collect,
    [],
  )
  .option('--alertmanager <url>', 'post alerts to this Alertmanager (v2 API; repeatable)', collect, [])
  .option(
    '--alert-after <path>',
    'run this executable per alert, env JOB RUN RESULT URL EVENT PLATFORM (repeatable)',
    collect,
    [],
  )
  .option(
    '--public-url <url>',
    'the public base URL, for links in alerts and Atom feeds (default: the listen URL; feeds: relative)',
  )
  .option('--alert-timeout <duration>', 'an alert delivery taking longer fails', DEFAULTS.alertTimeout)
  .option(
    '--alert-retry-base <duration>',
    'first retry delay of a failed alert, doubling each time',
    DEFAULTS.alertRetryBase,
  )
  .option('--alert-retry-max <duration>', 'longest wait between two attempts of an alert', DEFAULTS.alertRetryMax)
  .option('--alert-attempts <n>', 'attempts per alert and target (0: until delivered)', DEFAULTS.alertAttempts)
  .option(
    '--alert-outbox-max <n>',
    'undelivered alerts kept per target; beyond, the oldest are dropped',
    DEFAULTS.alertOutboxMax,
  )
  .option(
    '--alertmanager-resend <duration>',
    'post firing alerts to Alertmanager again this often (keep it well under its resolve_timeout)',
    DEFAULTS.alertmanagerResend,
  )
  .addOption(artifactsOption!)
  .addOption(s3EndpointOption!)
  .addOption(s3RegionOption!)
  .option('--artifact-limit <size>', "a run's artifacts may add up to this much", DEFAULTS.artifactLimit)
  .option('--retain-latest <n>', 'hourly: per job and platform, keep the artifacts of the N newest runs')
  .option('--retain-for <duration>', 'hourly: strip the artifacts of runs finished longer ago, e.g. 30d')
  .option(
    '--resume-free <size>',
    'after the data dir filled up, writes resume once this much is free',
    DEFAULTS.resumeFree,
  )
  .enablePositionalOptions()
  .exitOverride()
  .action(async (flags: ServerOptionsInput) => {
    const options = compileServerOptions({ ...flags, debug: process.env.BUILDER_DEBUG === '1' });
    const { logger } = options;
    const server = await startServer(options);
    process.stdout.write(`builder-server listening on ${server.url}\n`);
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) process.exit(130); // second signal: do not wait
      stopping = true;
      logger.info('server.stopping', { signal });
      void server.close().then(() => process.exit(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });

const token = program.command('token').description('manage access tokens (stored hashed)');
token
  .command('create')
  .description('create a token and print it (it is shown only once)')
  .addOption(dataDirOption())
  .addOption(
    new Option('--role <role>', 'admin (everything), read (observe/info), worker (workers only)')
      .choices(RoleSchema.options)
      .makeOptionMandatory(),
  )
  .option(
    '--name <name>',
    'worker tokens: the worker it is for, or a fleet pattern such as jail-* (required); other roles: a label',
  )
  .action(function (this: Command, o: { dataDir: string; role: 'admin' | 'read' | 'worker'; name?: string }) {
    if (o.role === 'worker' && (o.name === undefined || !WORKER_PATTERN.test(o.name))) {
      this.error(
        'builder-server token create: ' +
          (o.name === undefined
            ? 'a worker token names its worker: add --name NAME (or a fleet pattern such as --name "jail-*")'
            : `--name ${o.name}: a worker name or pattern is letters, digits, . _ - and *`),
        { exitCode: 2 },
      );
    }
    const db = openDb(o.dataDir);
    const worker = o.role === 'worker' ? o.name! : null;
    process.stdout.write(`${createToken(db, o.role, o.name ?? null, Date.now(), worker)}\n`);
    db.close();
  });
token
  .command('list')
  .description('id, role, what the token may be (worker tokens: which workers), label, created')
  .addOption(dataDirOption())
  .action((o: { dataDir: string }) => {
    const db = openDb(o.dataDir);
    for (const t of listTokens(db)) {
      const may =
        t.role !== 'worker'
          ? t.role === 'admin'
            ? 'everything'
            : 'read'
          : t.worker === null
            ? 'nothing (made before worker names; make a new one with --name)'
            : `worker ${t.worker}`;
      process.stdout.write(`${t.id}\t${t.role}\t${may}\t${t.name ?? '-'}\t${new Date(t.createdAt).toISOString()}\n`);
    }
    db.close();
  });
token
  .command('revoke <id>')
  .addOption(dataDirOption())
  .action((id: string, o: { dataDir: string }) => {
    const db = openDb(o.dataDir);
    const ok = revokeToken(db, Number(id));
    db.close();
    if (!ok) {
      process.stderr.write(`builder-server: no token with id ${id}\n`);
      process.exitCode = 3;
    }
  });

addStoreOptions(
  program
    .command('vacuum')
    .description('strip the artifacts of old runs and delete blobs no run refers to (safe while the server runs)')
    .addOption(dataDirOption()),
)
  .option('--keep-latest <n>', 'per job and platform, keep the artifacts of the N newest runs that have any')
  .option('--older-than <duration>', 'strip the artifacts of runs that finished longer ago, e.g. 30d')
  .option('--job <name>', 'only the runs of this job')
  .option('--dry-run', 'print what would be removed, change nothing')
  .option('--json', 'print the report as JSON')
  .action(async function (
    this: Command,
    o: {
      dataDir: string;
      artifacts?: string;
      s3Endpoint?: string;
      s3Region: string;
      keepLatest?: string;
      olderThan?: string;
      job?: string;
      dryRun?: boolean;
      json?: boolean;
    },
  ) {
    let policy;
    let blobs;
    try {
      policy = compileVacuumPolicy(o);
      blobs = openStoreFromFlags(o);
    } catch (err) {
      this.error(`builder-server vacuum: ${(err as Error).message}`, { exitCode: 2 });
    }
    // an empty database would only hide a mistyped --data-dir
    if (!existsSync(join(o.dataDir, 'builder.sqlite'))) {
      process.stderr.write(`builder-server: no builder database in ${o.dataDir}\n`);
      process.exitCode = 3;
      return;
    }
    const db = openDb(o.dataDir);
    try {
      if (o.job !== undefined && !new JobStore(db).getAny(o.job)) {
        process.stderr.write(`builder-server: no job named "${o.job}"\n`);
        process.exitCode = 3;
        return;
      }
      const report = await vacuum({ db, blobs, now: Date.now() }, policy);
      process.stdout.write(
        o.json
          ? `${JSON.stringify({ dryRun: policy.dryRun, store: blobs.description, ...report })}\n`
          : formatVacuumReport(report, { dryRun: policy.dryRun, store: blobs.description }),
      );
    } finally {
      db.close();
      closeStore(blobs);
    }
  });

addVerifyCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  if (err instanceof UsageError) {
    process.stderr.write(`builder-server: ${err.message} (see --help)\n`);
    process.exit(2);
  }
  process.stderr.write(`builder-server: ${(err as Error).message}\n`);
  process.exit(1);
});
