import type { RunResult, RunState } from '@builder/protocol';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Registry as Workers } from '../workers/registry.ts';
import { targetLabel } from '../alerts/targets.ts';
import type { RunEvent } from '../run-events.ts';
import type { AlertOutboxStore } from '../store/alert-outbox.ts';
import type { JobStore } from '../store/jobs.ts';
import type { RunHistory } from '../store/run-history.ts';
import type { RunStore } from '../store/runs.ts';
import type { StorageOutage } from '../storage/outage.ts';
import type { RunRow } from '../store/rows.ts';

/** Seconds; builds take from seconds to hours. */
const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200];
/** Seconds; dispatch is push, so an idle platform answers in milliseconds. */
const WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 14400];

/**
 * Prometheus metrics of one server instance, in their own registry (never prom-client's global
 * one, so two servers in one process do not clash). Counters and histograms are fed by the run
 * events (`onRunEvent`, once committed) and start at 0 with the process; gauges are read from SQLite and the worker
 * registry at scrape time, so they are right after a restart too.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly finished;
  private readonly lost;
  private readonly duration;
  private readonly queueWait;
  private readonly transfers;
  private readonly artifactBytes;
  private readonly blobsStored;
  private readonly reclaims;
  private readonly alertsDropped;
  /** Runs re-queued for another attempt: when they became eligible again (epoch ms). */
  private readonly requeuedAt = new Map<string, number>();

  /** `process: false` leaves out the process_* and nodejs_* metrics (see CoreOptions.processMetrics). */
  constructor(deps: {
    runs: Pick<RunStore, 'countByPlatform'>;
    jobs: Pick<JobStore, 'platformsInUse'>;
    history: Pick<RunHistory, 'lastSuccessByJob'>;
    /** The alert outbox and what is failing now; none: no such series. */
    outbox?: Pick<AlertOutboxStore, 'lengths' | 'firing'>;
    workers: Workers;
    storage?: StorageOutage;
    process?: boolean;
  }) {
    const { runs, jobs, history, workers, storage, outbox } = deps;
    const register = [this.registry];
    if (deps.process ?? true) {
      // process_* and nodejs_*, unprefixed as dashboards expect; minus three gauges whose `_total`
      // names promtool rejects (their per-type versions without the suffix remain)
      collectDefaultMetrics({ register: this.registry });
      for (const name of [
        'nodejs_active_handles_total',
        'nodejs_active_requests_total',
        'nodejs_active_resources_total',
      ]) {
        this.registry.removeSingleMetric(name);
      }
    }

    this.finished = new Counter({
      name: 'builder_runs_finished_total',
      help: 'Runs that reached a terminal state, by job (builder_job), platform and state (succeeded, failed, timeout, cancelled, lost, error).',
      labelNames: ['builder_job', 'platform', 'state'] as const,
      registers: register,
    });
    this.lost = new Counter({
      name: 'builder_runs_lost_total',
      help: 'Attempts whose worker was not heard from for the lease, including ones retried afterwards.',
      labelNames: ['builder_job', 'platform'] as const,
      registers: register,
    });
    this.duration = new Histogram({
      name: 'builder_run_duration_seconds',
      help: 'Started to finished of the final attempt of runs that reached a terminal state (worker clock).',
      labelNames: ['platform'] as const,
      buckets: DURATION_BUCKETS,
      registers: register,
    });
    this.queueWait = new Histogram({
      name: 'builder_run_queue_wait_seconds',
      help: 'Queued (or eligible again for a retry) to started, per attempt.',
      labelNames: ['platform'] as const,
      buckets: WAIT_BUCKETS,
      registers: register,
    });

    this.transfers = new Counter({
      name: 'builder_artifact_transfers_total',
      help: 'Artifact transfers (worker output and uploads) by outcome: stored, refused (bad input), failed (server side or broken off).',
      labelNames: ['outcome'] as const,
      registers: register,
    });
    this.artifactBytes = new Counter({
      name: 'builder_artifact_received_bytes_total',
      help: 'File bytes received in stored artifact transfers (files the store already had are not sent).',
      registers: register,
    });
    this.blobsStored = new Counter({
      name: 'builder_artifact_blobs_stored_total',
      help: 'Blobs new to the artifact store (each distinct SHA-256 once).',
      registers: register,
    });
    this.reclaims = new Counter({
      name: 'builder_attempts_reclaimed_total',
      help: 'Attempts taken back from a worker whose heartbeat did not list them: never started (assigned, re-queued uncharged) or running (lost).',
      labelNames: ['platform', 'state'] as const,
      registers: register,
    });

    /** Platforms that get a 0 rather than no series: those of scheduled jobs and of connected workers. */
    const knownPlatforms = (): Set<string> => {
      const set = workers.platforms();
      for (const p of jobs.platformsInUse()) set.add(p);
      return set;
    };
    /** A gauge per platform, read at scrape time: 0 for known platforms, plus every `[platform, n]` counted. */
    const perPlatform = (name: string, help: string, count: () => Iterable<readonly [string, number]>) =>
      new Gauge({
        name,
        help,
        labelNames: ['platform'] as const,
        registers: register,
        collect() {
          this.reset();
          const by = new Map<string, number>([...knownPlatforms()].map((p) => [p, 0]));
          for (const [platform, n] of count()) by.set(platform, (by.get(platform) ?? 0) + n);
          for (const [platform, n] of by) this.set({ platform }, n);
        },
      });
    const active = (states: RunState[]) =>
      runs
        .countByPlatform()
        .filter((r) => states.includes(r.state))
        .map((r) => [r.platform, r.n] as const);
    perPlatform(
      'builder_queue_length',
      'Runs waiting in the queue (including ones in retry backoff), by platform.',
      () => active(['queued']),
    );
    perPlatform('builder_runs_running', 'Runs holding a worker slot (assigned or running), by platform.', () =>
      active(['assigned', 'running']),
    );
    perPlatform('builder_workers_connected', 'Workers connected now, by platform.', () =>
      workers.all().map((w) => [w.platform, 1] as const),
    );
    perPlatform('builder_worker_slots', 'Total capacity (concurrent runs) of the connected workers, by platform.', () =>
      workers.all().map((w) => [w.platform, w.capacity] as const),
    );
    if (storage) storageGauges(register, storage);
    new Gauge({
      name: 'builder_job_last_success_timestamp_seconds',
      help: 'When the newest succeeded run of each scheduled job (builder_job) finished on each platform (Unix seconds); no series until it first succeeds there.',
      labelNames: ['builder_job', 'platform'] as const,
      registers: register,
      collect() {
        this.reset();
        for (const r of history.lastSuccessByJob()) this.set({ builder_job: r.job, platform: r.platform }, r.t / 1000);
      },
    });
    this.alertsDropped = new Counter({
      name: 'builder_alerts_dropped_total',
      help: 'Undelivered alerts dropped because their target already had the most the outbox keeps (--alert-outbox-max), by target.',
      labelNames: ['target'] as const,
      registers: register,
    });
    if (outbox) {
      new Gauge({
        name: 'builder_alert_outbox_length',
        help: 'Alerts stored and not yet delivered, by target (kind and origin; a webhook URL path is not shown).',
        labelNames: ['target'] as const,
        registers: register,
        collect() {
          this.reset();
          const by = new Map<string, number>();
          for (const r of outbox.lengths()) by.set(targetLabel(r.target), (by.get(targetLabel(r.target)) ?? 0) + r.n);
          for (const [target, n] of by) this.set({ target }, n);
        },
      });
      new Gauge({
        name: 'builder_job_failing',
        help: '1 for each scheduled job (builder_job) and platform whose last finished run failed (what Alertmanager gets as BuilderRunFailed); no series otherwise.',
        labelNames: ['builder_job', 'platform'] as const,
        registers: register,
        collect() {
          this.reset();
          for (const f of outbox.firing()) this.set({ builder_job: f.job, platform: f.platform }, 1);
        },
      });
    }
  }

  /** The run-event listener: counts from the rows the events carry, no reads. */
  readonly onRunEvent = (e: RunEvent): void => {
    if (e.type === 'started') this.started(e.run, e.run.startedAt ?? e.run.queuedAt);
    else if (e.type === 'ended') this.attemptEnded(e.attempt, e.run.state, e.result, e.finishedAt, e.at);
    else if (e.type === 'reclaimed') this.reclaimed(e.run, e.state);
  };

  /** An attempt of `run` (the row as it was before) ended with `result`; `state` is the run's new state. */
  attemptEnded(run: RunRow, state: RunState, result: RunResult, finishedAt: number, now: number): void {
    if (result.kind === 'lost') this.lost.inc({ builder_job: run.job, platform: run.platform });
    if (state === 'queued') {
      const next = run.retryBackoffSec * 1000 * 2 ** (run.attempt - 1);
      this.requeuedAt.set(run.id, next > 0 ? Math.ceil(now + next) : now);
      return;
    }
    this.requeuedAt.delete(run.id);
    this.finished.inc({ builder_job: run.job, platform: run.platform, state });
    if (run.startedAt !== null) {
      this.duration.observe({ platform: run.platform }, Math.max(0, finishedAt - run.startedAt) / 1000);
    }
  }

  /** An undelivered alert for `target` was dropped (its outbox was full). */
  alertDropped(target: string): void {
    this.alertsDropped.inc({ target: targetLabel(target) });
  }

  /** A worker's heartbeat did not list an attempt it held. */
  reclaimed(run: RunRow, state: 'assigned' | 'running'): void {
    this.reclaims.inc({ platform: run.platform, state });
  }

  /** An attempt started. */
  started(run: RunRow, startedAt: number): void {
    const since = run.attempt === 1 ? run.queuedAt : this.requeuedAt.get(run.id);
    this.requeuedAt.delete(run.id);
    if (since === undefined) return; // a retry queued before a restart: its eligible time is unknown
    this.queueWait.observe({ platform: run.platform }, Math.max(0, startedAt - since) / 1000);
  }

  /** One artifact transfer ended. */
  artifactTransfer(outcome: 'stored' | 'refused' | 'failed', received?: { sent: number; stored: number }): void {
    this.transfers.inc({ outcome });
    if (received) {
      this.artifactBytes.inc(received.sent);
      this.blobsStored.inc(received.stored);
    }
  }

  contentType(): string {
    return this.registry.contentType;
  }

  scrape(): Promise<string> {
    return this.registry.metrics();
  }
}

/** The data dir's room and the outage it causes when there is none, read at scrape time. */
function storageGauges(register: Registry[], storage: StorageOutage): void {
  new Gauge({
    name: 'builder_storage_free_bytes',
    help: 'Bytes still free for the server in the file system of its data dir (statfs); no sample when it cannot be read.',
    registers: register,
    collect() {
      this.reset();
      const free = storage.freeBytes();
      if (free !== undefined) this.set(free);
    },
  });
  new Gauge({
    name: 'builder_storage_refusing_writes',
    help: '1 while the data dir is full and the server refuses new runs, console output and artifacts; 0 otherwise.',
    registers: register,
    collect() {
      this.set(storage.refusing ? 1 : 0);
    },
  });
}
