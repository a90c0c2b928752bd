import { isTerminal } from '@builder/protocol';
import { Alerts } from './alerts/alerts.ts';
import { createHandlers } from './api/methods.ts';
import { runView } from './runs/views.ts';
import { DEFAULT_ARTIFACT_OPTIONS, openBlobStore, resetArtifactTmp } from './artifacts/open.ts';
import { ConsoleCompressor } from './console/compress.ts';
import { LogStore } from './console/log-store.ts';
import { Observers } from './console/observers.ts';
import type { Context } from './context.ts';
import { Dispatcher } from './dispatch/dispatcher.ts';
import { Registry } from './workers/registry.ts';
import { Metrics } from './metrics/metrics.ts';
import { RunEvents } from './run-events.ts';
import type { ServerOptions } from './options.ts';
import { ActiveRuns } from './runs/active.ts';
import { ConsoleIntake } from './runs/console-intake.ts';
import { enqueueScheduled } from './runs/enqueue.ts';
import { Lifecycle } from './runs/lifecycle.ts';
import { resumeRuns, resyncRuns } from './runs/resync.ts';
import { Scheduler } from './scheduler/scheduler.ts';
import { StorageOutage } from './storage/outage.ts';
import { AlertOutboxStore } from './store/alert-outbox.ts';
import { ArtifactStore } from './store/artifacts.ts';
import { InputStore } from './store/inputs.ts';
import { Chains } from './runs/chains.ts';
import { openDb } from './store/db.ts';
import { GroupCommit } from './store/group-commit.ts';
import { HookStore } from './store/hooks.ts';
import { JobStore } from './store/jobs.ts';
import { PlatformStore } from './store/platforms.ts';
import { RunHistory } from './store/run-history.ts';
import { RunStore } from './store/runs.ts';
import { SecretStore } from './store/secrets.ts';
import { WorkerStore } from './store/workers.ts';
import { serverKey } from './store/keys.ts';
import { provenanceKey } from './reproduce/provenance.ts';
import { join } from 'node:path';
import { RepoPublisher } from './repos/publisher.ts';
import { RepoKeys } from './repos/signing.ts';
import { RepoStore } from './store/repos.ts';
import { Hub } from './ws/hub.ts';
import { VERSION } from './version.ts';

export interface CoreOptions extends Omit<ServerOptions, 'host' | 'port' | 'retention'> {
  /**
   * process_* / nodejs_* metrics (default true). Each set starts a native event-loop monitor that
   * is never stopped: right once per process, wrong for the many cores a simulation creates.
   */
  processMetrics?: boolean;
}

/** Everything the server is except its HTTP listener: what a simulation drives without sockets. */
export interface ServerCore {
  readonly ctx: Context;
  readonly lifecycle: Lifecycle;
  readonly dispatcher: Dispatcher;
  readonly intake: ConsoleIntake;
  readonly scheduler: Scheduler;
  readonly handlers: ReturnType<typeof createHandlers>;
  readonly hub: Hub;
  /** Compresses the consoles of finished runs in the background. */
  readonly compressor: ConsoleCompressor;
  /** Stop the timers and cut every connection; the database stays open for requests still in flight. */
  stop(): void;
  /** Stop, commit the open batch, close the files and the database. */
  close(): void;
  /**
   * Stop as `kill -9` would leave things: timers stopped, the open batch rolled back (never
   * committed), files closed. For crash tests in one process; connections are the caller's to cut.
   */
  abandon(): void;
}

/** Open the data dir and recover from whatever state the last process left; nothing listens yet. */
export function createServerCore(opts: CoreOptions): ServerCore {
  const db = openDb(opts.dataDir);
  const artifactOpts = opts.artifacts ?? DEFAULT_ARTIFACT_OPTIONS;
  const logs = new LogStore(opts.dataDir, opts.logger);
  const registry = new Registry();
  const storage = new StorageOutage({
    dataDir: opts.dataDir,
    clock: opts.clock,
    logger: opts.logger,
    ...(opts.resumeFreeBytes !== undefined && { resumeFreeBytes: opts.resumeFreeBytes }),
  });
  const runs = new RunStore(db);
  const jobs = new JobStore(db);
  const history = new RunHistory(db);
  const outbox = new AlertOutboxStore(db);
  const metrics = new Metrics({
    runs,
    jobs,
    history,
    outbox,
    workers: registry,
    storage,
    process: opts.processMetrics ?? true,
  });
  const commit = new GroupCommit(db);
  const observers = new Observers(logs);
  const events = new RunEvents({ commit, logger: opts.logger });
  const repos = new RepoStore(db);
  const blobs = openBlobStore(opts.dataDir, artifactOpts);
  const repoFilesDir = join(opts.dataDir, 'repos', 'files');
  const repoPublisher = new RepoPublisher({
    repos,
    blobs,
    commit,
    events,
    clock: opts.clock,
    logger: opts.logger,
    loadKeys: () => RepoKeys.load(db, opts.clock.now()),
    filesDir: repoFilesDir,
  });
  const ctx: Context = {
    db,
    commit,
    jobs,
    runs,
    platforms: new PlatformStore(db),
    registry,
    workers: new WorkerStore(db),
    active: new ActiveRuns(),
    logs,
    artifacts: new ArtifactStore(db),
    inputs: new InputStore(db),
    blobs,
    artifactTmpDir: resetArtifactTmp(opts.dataDir),
    maxArtifactBytes: artifactOpts.maxRunBytes,
    observers,
    events,
    secrets: new SecretStore(db),
    hooks: new HookStore(db),
    attemptKey: serverKey(db, 'attempt-secret', opts.clock.now()),
    provenanceKey: provenanceKey(db, opts.clock.now()),
    repos,
    repoPublisher,
    repoFilesDir,
    storage,
    clock: opts.clock,
    logger: opts.logger,
    leaseMs: opts.leaseMs,
    heartbeatMs: opts.heartbeatMs,
    version: VERSION,
    ...(opts.alerts?.publicUrl !== undefined && { publicUrl: opts.alerts.publicUrl }),
    metrics,
  };
  // always there: jobs may carry their own webhooks even when the server has no global target
  ctx.alerts = new Alerts(
    { ...ctx, history, outbox, dropped: (target) => metrics.alertDropped(target) },
    opts.alerts ?? { webhooks: [], alertmanagers: [], after: [] },
  );
  recover(ctx);
  const compressor = new ConsoleCompressor({
    logs,
    logger: opts.logger,
    finished: (runId) => isTerminal(runs.get(runId)?.state ?? 'queued'),
  });
  compressor.recover();

  // Who follows what happens to runs; each event after its batch committed, in this order.
  events.subscribe(observers.listener((run) => runView(ctx, run)));
  events.subscribe(metrics.onRunEvent);
  repoPublisher.start();
  // alerts are written to the outbox in the batch of the change that raised them
  events.beforeCommit(ctx.alerts.onBatch);
  const lifecycle = new Lifecycle(ctx);
  const dispatcher = new Dispatcher({
    ...ctx,
    systemLine: (id, text) => lifecycle.systemLine(id, text),
    // alerts hold the one public URL: --public-url, else the listen URL once known (server.ts)
    publicUrl: () => ctx.alerts?.publicUrl ?? '',
  });
  new Chains({ ...ctx, systemLine: (id, text) => lifecycle.systemLine(id, text) });
  const intake = new ConsoleIntake({ ...ctx, lifecycle }, (runId) => observers.watching(runId));
  const scheduler = new Scheduler({
    jobs: ctx.jobs,
    clock: ctx.clock,
    logger: ctx.logger,
    missedGraceMs: opts.missedGraceMs,
    fire: (job, trigger) => void enqueueScheduled(ctx, job, trigger),
    write: (fn) => ctx.commit.write(fn),
    missed: (job, due, policy) => ctx.alerts?.missed(job, due, policy),
  });
  watchStorage(ctx, scheduler, () => dispatcher.dispatch());
  const handlers = createHandlers({ ...ctx, lifecycle, scheduler });
  const hub = new Hub({
    ...ctx,
    lifecycle,
    intake,
    handlers,
    ...(opts.keepaliveMs !== undefined && { keepaliveMs: opts.keepaliveMs }),
  });

  const sweep = setInterval(
    () => {
      // while the disk is full a worker cannot report anything: its silence proves nothing
      if (ctx.storage.refusing) return;
      for (const a of ctx.active.expired(ctx.clock.now())) lifecycle.lose(a.id);
    },
    Math.max(100, Math.min(1000, opts.leaseMs / 4)),
  );
  sweep.unref();

  const stopTimers = () => {
    scheduler.stop();
    dispatcher.stop();
    clearInterval(sweep);
    ctx.alerts?.stop();
    ctx.storage.stop();
  };
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    stopTimers();
    hub.close();
  };
  return {
    ctx,
    lifecycle,
    dispatcher,
    intake,
    scheduler,
    handlers,
    hub,
    compressor,
    stop,
    close() {
      stop();
      // one in flight finishes on its own (or is a temp file `recover` removes at the next start)
      void compressor.stop();
      ctx.commit.flush();
      logs.closeAll();
      db.close();
    },
    abandon() {
      void compressor.stop();
      stopTimers();
      hub.abandon();
      ctx.commit.abandon();
      logs.closeAll();
      // SQLite rolls back a transaction still open when its connection closes
      db.close();
    },
  };
}

/**
 * After a crash or restart: console files are cut back to their durable length, and every run that
 * was assigned or running gets a fresh lease, so its worker has that long to reconnect and re-attach
 * before the run counts as lost.
 */
function recover(ctx: Context): void {
  resyncRuns(ctx);
  const n = ctx.active.all().length;
  if (n > 0) ctx.logger.info('server.recovered', { active: n });
}

/**
 * A full disk stops writes, not the server. A batch rolled back for lack of space is undone in
 * memory too (resyncRuns); while refusing, nothing is scheduled or dispatched; when the probe finds
 * room again, workers are asked to resend what was refused, and the queue moves on.
 */
function watchStorage(ctx: Context, scheduler: Scheduler, dispatch: () => void): void {
  ctx.commit.onStorageFull = (err, rolledBack) => {
    if (rolledBack) resyncRuns(ctx);
    ctx.storage.enter(err, rolledBack ? 'database commit' : 'database write');
  };
  ctx.storage.onStart((cause) => {
    scheduler.stop();
    ctx.alerts?.storageFull(cause, ctx.storage.freeBytes());
  });
  ctx.storage.onEnd(() => {
    resumeRuns(ctx);
    scheduler.start();
    dispatch();
  });
}
