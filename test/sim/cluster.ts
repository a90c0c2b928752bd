/**
 * The simulated cluster: one real server core (real SQLite file, real console files) and real
 * workers, all in this process, joined by the simulated network, driven by simulated time. Crashes
 * are incarnations: a crashed server's core is abandoned (its open batch rolled back, files closed)
 * and a new core opens the same data dir and recovers; a crashed worker is dropped with its jobs and
 * a new Worker of the same name starts (its executor's cleanup() first).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Methods, isTerminal } from '@builder/protocol';
import { createServerCore, type ServerCore } from '../../packages/server/src/core.ts';
import type { Logger as ServerLogger } from '../../packages/server/src/log.ts';
import { openDb } from '../../packages/server/src/store/db.ts';
import { createToken } from '../../packages/server/src/store/tokens.ts';
import type { Logger as WorkerLogger } from '../../packages/protocol/src/log.ts';
import { compileOptions } from '../../packages/worker/src/options.ts';
import { Worker } from '../../packages/worker/src/worker.ts';
import { Executions, SimExecutor } from './executor.ts';
import { SimNet, type SimSocket } from './network.ts';
import { type SimTime, prng } from './time.ts';
import type { Trace } from './trace.ts';

export const LEASE_MS = 3000;
export const HEARTBEAT_MS = 1000;
export const JOB = 'sim';
export const PLATFORM = 'sim';

/** A migrated empty database, made once per process: migrating for every schedule would be most of its cost. */
let template: Buffer | undefined;
function freshDataDir(): string {
  // tmpfs when there is one: synchronous=FULL stays on, and costs nothing there
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'builder-sim-'));
  if (!template) {
    const db = openDb(dir);
    template = db.serialize();
    db.close();
    rmSync(dir, { recursive: true });
    mkdirSync(dir);
  }
  writeFileSync(join(dir, 'builder.sqlite'), template);
  return dir;
}

export interface SimWorker {
  readonly name: string;
  readonly capacity: number;
  incarnation: number;
  owner: string;
  worker: Worker | undefined;
}

export class Cluster {
  readonly dataDir = freshDataDir();
  readonly net: SimNet;
  readonly executions = new Executions();
  readonly workers = new Map<string, SimWorker>();
  core: ServerCore | undefined;
  /** Messages the server got from connections their worker had already left (see Link.abandonByWorker). */
  lateMessages = 0;
  /** Runs a (simulated) client asked to cancel. */
  readonly cancelled = new Set<string>();
  /** Runs the (simulated) client was told were queued. */
  readonly acknowledged = new Set<string>();
  serverOwner = '';
  private serverIncarnation = 0;
  private readonly tokens = new Map<string, string>();

  constructor(
    readonly time: SimTime,
    readonly random: () => number,
    readonly trace: Trace,
  ) {
    const delay = () => 0.2 + random() * random() * 30;
    const spike = () => 500 + random() * 4500;
    this.net = new SimNet(time, delay, spike, (from, to, frame) => {
      // a message from a worker that has already given up on this connection (it may be on a new one)
      if (frame.kind === 'data' && from.readyState === 3 && to === from.link.server) this.lateMessages++;
      trace.frame(from, to, frame);
    });
  }

  /** A new server process on the data dir: open, recover, take connections. */
  startServer(): void {
    const owner = `server#${++this.serverIncarnation}`;
    this.serverOwner = owner;
    this.time.owner = owner;
    const core = createServerCore({
      dataDir: this.dataDir,
      leaseMs: LEASE_MS,
      heartbeatMs: HEARTBEAT_MS,
      missedGraceMs: 60_000,
      clock: { now: () => this.time.now },
      logger: this.serverLogger(owner),
      processMetrics: false,
    });
    this.core = core;
    core.scheduler.start();
    this.net.listener = { owner, accept: (end: SimSocket) => core.hub.accept(end) };
    this.trace.note(owner, 'started');
  }

  /** kill -9 of the server: nothing more runs, its batch is rolled back; the kernel closes its sockets (or, silent, not even that). */
  crashServer(silent: boolean): void {
    const core = this.core;
    if (!core) return;
    this.trace.note(this.serverOwner, silent ? 'crashed (host silent)' : 'crashed');
    this.time.cancelOwner(this.serverOwner);
    this.net.listener = undefined;
    this.net.processDown(this.serverOwner, silent);
    core.abandon();
    this.core = undefined;
  }

  /** First run: the job every schedule executes, and a token named for each worker. */
  setup(workers: { name: string; capacity: number }[]): void {
    const core = this.core!;
    for (const w of workers) {
      this.tokens.set(w.name, createToken(core.ctx.db, 'worker', null, this.time.now, w.name));
      this.workers.set(w.name, { ...w, incarnation: 0, owner: '', worker: undefined });
    }
    const spec = Methods.schedule.params.parse({
      name: JOB,
      platforms: [PLATFORM],
      script: 'print five numbered lines',
      schedule: null,
      retries: 2,
      retryBackoffSec: 0,
      concurrency: 100,
    });
    core.handlers.schedule(spec, noSession);
  }

  /**
   * Queue `n` runs, as `builder-client execute` would. Only runs whose batch committed were
   * acknowledged to the client: a crash before that rolls them back, and rightly so.
   */
  execute(n: number): void {
    const core = this.core;
    if (!core) return;
    this.time.owner = this.serverOwner;
    for (let i = 0; i < n; i++) {
      const { result } = core.handlers.execute(
        { name: JOB, params: {}, next: false, inputs: [], inputsFrom: [] },
        noSession,
      );
      for (const r of result.runs) this.trace.numbers.set(r.id, r.number);
      core.ctx.commit.then(() => {
        for (const r of result.runs) this.acknowledged.add(r.id);
      });
    }
  }

  /**
   * Cancel a run that has not ended, as `builder-client cancel` would. Asked is enough to allow it
   * to end cancelled (the answer may be lost in a crash; the request may still have been committed).
   */
  cancel(pick: (ids: string[]) => string | undefined): string | undefined {
    const core = this.core;
    if (!core) return undefined;
    this.time.owner = this.serverOwner;
    const open = core.ctx.runs.list({ job: core.ctx.jobs.get(JOB)!.id, limit: 100_000 });
    const id = pick(open.filter((r) => !isTerminal(r.state)).map((r) => r.id));
    if (id === undefined) return undefined;
    this.cancelled.add(id);
    core.handlers.cancel({ run: id, reason: 'cancelled by the simulation' }, noSession);
    return id;
  }

  startWorker(name: string): void {
    const w = this.workers.get(name)!;
    const owner = `${name}#${++w.incarnation}`;
    w.owner = owner;
    this.time.owner = owner;
    const token = this.tokens.get(name)!;
    const options = compileOptions({
      remote: 'http://server.sim:8330',
      token,
      platform: PLATFORM,
      name,
      capacity: w.capacity,
      workDir: join(this.dataDir, 'work', name),
    });
    const seed = Math.floor(this.random() * 2 ** 31);
    const worker = new Worker({
      options,
      executor: new SimExecutor(this.executions, owner, () => 50 + this.random() * 400),
      log: this.workerLogger(owner, {}),
      now: () => this.time.now,
      random: prng(seed),
      connect: (_url, opts) => this.net.connect(owner, opts.handshakeTimeout ?? 10_000),
    });
    w.worker = worker;
    void worker.start();
  }

  /** kill -9 of a worker: its jobs die with it (their timers are its own). */
  crashWorker(name: string, silent: boolean): void {
    const w = this.workers.get(name)!;
    if (!w.worker) return;
    this.trace.note(w.owner, silent ? 'crashed (host silent)' : 'crashed');
    this.time.cancelOwner(w.owner);
    this.net.processDown(w.owner, silent);
    w.worker = undefined;
  }

  private serverLogger(owner: string): ServerLogger {
    const log = (level: string) => (event: string, fields?: Record<string, unknown>) => {
      this.trace.log(owner, level, event, fields);
      if (level === 'error' || BAD_SERVER_EVENTS.has(event)) this.trace.fail(`server: ${event} ${json(fields)}`);
    };
    const logger: ServerLogger = {
      debug: () => undefined,
      info: log('info'),
      warn: log('warn'),
      error: log('error'),
      child: () => logger,
    };
    return logger;
  }

  private workerLogger(owner: string, bound: Record<string, unknown>): WorkerLogger {
    const log = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
      const all = { ...bound, ...fields };
      this.trace.log(owner, level, msg, all);
      if (BAD_WORKER_MESSAGES.has(msg)) this.trace.fail(`${owner}: ${msg} ${json(all)}`);
    };
    return {
      debug: () => undefined,
      info: log('info'),
      warn: log('warn'),
      error: log('error'),
      child: (fields) => this.workerLogger(owner, { ...bound, ...fields }),
    };
  }
}

/** What a correct server never logs when talking to correct workers. */
const BAD_SERVER_EVENTS = new Set(['ws.bad_message', 'ws.handler_failed', 'ws.hello_refused']);
/** A message the worker drops, or one it cannot read: the invariant "no message a peer may drop". */
const BAD_WORKER_MESSAGES = new Set([
  'connection.message_before_welcome_ignored',
  'connection.second_welcome_ignored',
  'connection.invalid_message_ignored',
  'connection.protocol_error',
]);

const noSession = { sink: { send: () => undefined, bufferedAmount: () => 0, closed: true }, nextSub: () => 0 };

function json(v: unknown): string {
  return v === undefined ? '' : JSON.stringify(v);
}
