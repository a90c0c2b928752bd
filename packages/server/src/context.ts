import type { Alerts } from './alerts/alerts.ts';
import type { BlobStore } from './artifacts/blob-store.ts';
import type { Clock } from './clock.ts';
import type { LogStore } from './console/log-store.ts';
import type { Observers } from './console/observers.ts';
import type { Registry } from './workers/registry.ts';
import type { RunEvents } from './run-events.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics/metrics.ts';
import type { ActiveRuns } from './runs/active.ts';
import type { ProvenanceKey } from './reproduce/provenance.ts';
import type { RepoPublisher } from './repos/publisher.ts';
import type { RepoStore } from './store/repos.ts';
import type { StorageOutage } from './storage/outage.ts';
import type { ArtifactStore } from './store/artifacts.ts';
import type { Db } from './store/db.ts';
import type { GroupCommit } from './store/group-commit.ts';
import type { InputStore } from './store/inputs.ts';
import type { HookStore } from './store/hooks.ts';
import type { JobStore } from './store/jobs.ts';
import type { PlatformStore } from './store/platforms.ts';
import type { RunStore } from './store/runs.ts';
import type { SecretStore } from './store/secrets.ts';
import type { WorkerStore } from './store/workers.ts';

/**
 * The server's parts, created once in core.ts and only assembled there: no component takes the
 * whole object. The run path has its own deps types (LifecycleDeps, DispatcherDeps,
 * ConsoleIntakeDeps, WorkerSessionDeps, ApiDeps), the HTTP side names what it uses (web/deps.ts
 * SiteDeps and ConsoleDeps, http/ TransferDeps, DownloadDeps, AuthDeps, HttpDeps), each a Pick of
 * this list, so a reader sees a component's real dependencies at its signature.
 */
export interface Context {
  db: Db;
  commit: GroupCommit;
  jobs: JobStore;
  runs: RunStore;
  platforms: PlatformStore;
  registry: Registry;
  /** Every worker that ever connected, as last seen. */
  workers: WorkerStore;
  active: ActiveRuns;
  logs: LogStore;
  /** Which run has which files (SQLite) … */
  artifacts: ArtifactStore;
  /** Which run gets which input files (their bytes are blobs too). */
  inputs: InputStore;
  /** … and their bytes, once per SHA-256 (a local dir or an S3 bucket). */
  blobs: BlobStore;
  /** Staging dir for artifact transfers until they are verified. */
  artifactTmpDir: string;
  /** A run whose artifacts add up to more is refused. */
  maxArtifactBytes: number;
  observers: Observers;
  /** What happened to runs, told once committed: the one route to observers, dispatch, alerts, metrics. */
  events: RunEvents;
  secrets: SecretStore;
  /** Push hooks per job and the deliveries that queued runs. */
  hooks: HookStore;
  /** The key each attempt's artifact secret is derived from (runs/attempt-secret.ts). */
  attemptKey: Buffer;
  /** Signs each run's provenance (reproduce/provenance.ts); its public half is on the site. */
  provenanceKey: ProvenanceKey;
  /** Package repositories (apt, FreeBSD pkg) and the jobs that feed them. */
  repos: RepoStore;
  /** Keeps the repositories' signed indices in step with their jobs' succeeded runs. */
  repoPublisher: RepoPublisher;
  /** Where the repositories' index files are kept, one per SHA-256. */
  repoFilesDir: string;
  /** Whether the data dir is full and writes are refused; ended by its own probe. */
  storage: StorageOutage;
  clock: Clock;
  logger: Logger;
  leaseMs: number;
  heartbeatMs: number;
  version: string;
  /** `--public-url` when configured: where the public reaches the site (absolute links in feeds). */
  publicUrl?: string;
  /** Prometheus metrics served at GET /metrics. */
  metrics?: Metrics;
  /** Alert hooks; absent when no target is configured. */
  alerts?: Alerts;
}
