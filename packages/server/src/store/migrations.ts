/**
 * Numbered, append-only schema migrations. Never edit a shipped entry: add a new one.
 * Times are epoch milliseconds (REAL where sub-millisecond latency matters).
 */
export const MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'init',
    sql: `
CREATE TABLE jobs (
  id               INTEGER PRIMARY KEY,
  name             TEXT NOT NULL UNIQUE,
  platforms        TEXT NOT NULL,            -- JSON array of platform names
  script           TEXT NOT NULL,
  schedule         TEXT,                      -- cron expression or preset; NULL = on demand only
  timezone         TEXT NOT NULL DEFAULT 'UTC',
  missed           TEXT NOT NULL DEFAULT 'once' CHECK (missed IN ('skip', 'once')),
  timeout_s        REAL NOT NULL,
  kill_grace_s     REAL NOT NULL,
  retries          INTEGER NOT NULL,
  retry_backoff_s  REAL NOT NULL,
  concurrency      INTEGER NOT NULL,
  params           TEXT NOT NULL DEFAULT '{}',
  next_run_at      INTEGER,
  next_number      INTEGER NOT NULL DEFAULT 1,
  deleted_at       INTEGER,                   -- unscheduled; runs keep pointing here
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);

CREATE TABLE runs (
  id               TEXT PRIMARY KEY,          -- UUID
  job_id           INTEGER NOT NULL REFERENCES jobs(id),
  number           INTEGER NOT NULL,
  platform         TEXT NOT NULL,
  script           TEXT NOT NULL,
  params           TEXT NOT NULL,
  trigger          TEXT NOT NULL CHECK (trigger IN ('manual', 'schedule', 'missed')),
  state            TEXT NOT NULL,
  attempt          INTEGER NOT NULL DEFAULT 1,
  max_attempts     INTEGER NOT NULL,
  retry_backoff_s  REAL NOT NULL,
  timeout_s        REAL NOT NULL,
  kill_grace_s     REAL NOT NULL,
  priority         INTEGER NOT NULL DEFAULT 0,
  worker           TEXT,
  queued_at        REAL NOT NULL,
  not_before       INTEGER,
  assigned_at      REAL,
  started_at       REAL,
  finished_at      REAL,
  result           TEXT,                      -- JSON RunResult of the final attempt
  cancel_reason    TEXT,
  log_seq          INTEGER NOT NULL DEFAULT 0, -- highest durable output seq of the current attempt
  log_bytes        INTEGER NOT NULL DEFAULT 0, -- durable length of the console file
  UNIQUE (job_id, number)
);
CREATE INDEX runs_by_state ON runs (state, platform, priority DESC, queued_at);
CREATE INDEX runs_by_job ON runs (job_id, number DESC);
CREATE INDEX runs_by_job_state ON runs (job_id, state);

CREATE TABLE attempts (
  run_id       TEXT NOT NULL REFERENCES runs(id),
  attempt      INTEGER NOT NULL,
  worker       TEXT,
  started_at   REAL,
  finished_at  REAL NOT NULL,
  result       TEXT NOT NULL,
  PRIMARY KEY (run_id, attempt)
);

CREATE TABLE workers (
  name          TEXT PRIMARY KEY,
  platform      TEXT NOT NULL,
  labels        TEXT NOT NULL DEFAULT '[]',
  capacity      INTEGER NOT NULL,
  executor      TEXT NOT NULL,
  connected_at  INTEGER,
  last_seen_at  INTEGER
);

CREATE TABLE dropped_platforms (
  platform    TEXT PRIMARY KEY,
  dropped_at  INTEGER NOT NULL
);

CREATE TABLE tokens (
  id          INTEGER PRIMARY KEY,
  hash        TEXT NOT NULL UNIQUE,           -- SHA-256 of the token; the token itself is never stored
  role        TEXT NOT NULL CHECK (role IN ('admin', 'read', 'worker')),
  name        TEXT,
  created_at  INTEGER NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'backoff-index',
    // the dispatcher asks for the earliest retry backoff on every pass: keep that off a queue scan
    sql: `CREATE INDEX runs_backoff ON runs (not_before) WHERE state = 'queued' AND not_before IS NOT NULL;`,
  },
  {
    version: 3,
    name: 'job-templates',
    // a templated job has one rendered script per platform; jobs.script is then '' (it is NOT NULL)
    sql: `
ALTER TABLE jobs ADD COLUMN scripts TEXT;   -- JSON {platform: script}; NULL: every platform runs jobs.script
ALTER TABLE jobs ADD COLUMN template TEXT;  -- JSON {name, vars} the scripts were rendered from; NULL: none
`,
  },
  {
    version: 4,
    name: 'artifacts',
    // a run's files; their bytes live once per SHA-256 in the blob store (local dir or S3)
    sql: `
CREATE TABLE artifacts (
  run_id   TEXT NOT NULL REFERENCES runs(id),
  path     TEXT NOT NULL,
  size     INTEGER NOT NULL,
  sha256   TEXT NOT NULL,
  PRIMARY KEY (run_id, path)
);
CREATE INDEX artifacts_by_sha ON artifacts (sha256);
`,
  },
  {
    version: 5,
    name: 'job-alert-webhooks',
    sql: `ALTER TABLE jobs ADD COLUMN alert_webhooks TEXT NOT NULL DEFAULT '[]';  -- JSON array of URLs`,
  },
  {
    version: 6,
    name: 'worker-identity-and-secrets',
    sql: `
-- which worker(s) a worker token may connect as: a name or a pattern with * (e.g. jail-*);
-- NULL on worker tokens made before this: those can no longer connect a worker
ALTER TABLE tokens ADD COLUMN worker TEXT;
-- keys the server made for itself (e.g. to derive the per-attempt artifact secret)
CREATE TABLE server_keys (
  name       TEXT PRIMARY KEY,
  value      BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
-- values jobs ask for by name; job = '' for a secret every job may ask for, else one job's own
CREATE TABLE secrets (
  name       TEXT NOT NULL,
  job        TEXT NOT NULL DEFAULT '',
  value      TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (name, job)
);
ALTER TABLE jobs ADD COLUMN secrets TEXT NOT NULL DEFAULT '[]';  -- JSON array of secret names
-- the tail of the console held back from the log because it may be the start of a secret
ALTER TABLE runs ADD COLUMN log_carry BLOB;
`,
  },
  {
    version: 7,
    name: 'job-definition',
    // JSON {repo, commit, path, modified, url?}: the file `apply` read the job from; NULL for `schedule`
    sql: `ALTER TABLE jobs ADD COLUMN definition TEXT;`,
  },
  {
    version: 8,
    name: 'git-sources',
    sql: `
ALTER TABLE jobs ADD COLUMN source TEXT;      -- JSON {git, ref}; NULL: the job has no source
ALTER TABLE runs ADD COLUMN ref TEXT;         -- the ref this run asked for (the job's, or execute --ref)
ALTER TABLE runs ADD COLUMN commit_sha TEXT;  -- what the worker resolved it to, reported with started
`,
  },
  {
    version: 9,
    name: 'inputs-and-chains',
    sql: `
-- files placed in a run's input dir; bytes in the blob store under sha256, like artifacts
CREATE TABLE run_inputs (
  run_id  TEXT NOT NULL REFERENCES runs(id),
  name    TEXT NOT NULL,   -- path under $BUILDER_INPUT
  size    INTEGER NOT NULL,
  sha256  TEXT NOT NULL,
  origin  TEXT,            -- JSON {job, number, platform, path} of the artifact it was; NULL: a user's file
  PRIMARY KEY (run_id, name)
);
CREATE INDEX run_inputs_by_sha ON run_inputs (sha256);
-- blobs a user sent with PUT /inputs, so execute can refuse a hash the server never received
CREATE TABLE input_uploads (
  sha256      TEXT PRIMARY KEY,
  size        INTEGER NOT NULL,
  uploaded_at INTEGER NOT NULL
);
ALTER TABLE jobs ADD COLUMN after TEXT;      -- run after each success of this job (by name); NULL: none
ALTER TABLE runs ADD COLUMN after_run TEXT;  -- the run whose success queued this one (after:)
-- one run of a job per upstream success, whatever crashes or repeats
CREATE UNIQUE INDEX runs_after_run ON runs (job_id, after_run) WHERE after_run IS NOT NULL;
`,
  },
  {
    version: 10,
    name: 'push-hooks',
    sql: `
-- a job's push hook: the secret forges sign deliveries with (kept as secrets are: HMAC needs the
-- value itself) and the branches it builds (JSON array; NULL: its source's ref)
CREATE TABLE hooks (
  job_id      INTEGER PRIMARY KEY REFERENCES jobs(id),
  secret      TEXT NOT NULL,
  branches    TEXT,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
-- deliveries that queued runs, by the forge's delivery id: a redelivery answers the same runs
CREATE TABLE hook_deliveries (
  job_id       INTEGER NOT NULL REFERENCES jobs(id),
  forge        TEXT NOT NULL,
  delivery     TEXT NOT NULL,
  commit_sha   TEXT NOT NULL,
  runs         TEXT NOT NULL,              -- JSON array of run ids
  received_at  INTEGER NOT NULL,
  PRIMARY KEY (job_id, forge, delivery)
);
-- the runs of a commit (watch --commit, status --commit): resolved on start, asked for before
CREATE INDEX runs_by_commit ON runs (commit_sha) WHERE commit_sha IS NOT NULL;
CREATE INDEX runs_by_ref ON runs (ref) WHERE ref IS NOT NULL;
`,
  },
  {
    version: 11,
    name: 'alert-outbox',
    sql: `
-- alerts not yet delivered, one row per event and target, written in the batch of the change that
-- raised them and deleted once delivered; each target takes its rows in id order
CREATE TABLE alert_outbox (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  target     TEXT NOT NULL,               -- 'webhook URL', 'alertmanager URL', 'after PATH'
  body       TEXT NOT NULL,               -- JSON AlertEvent
  attempts   INTEGER NOT NULL DEFAULT 0,  -- failed deliveries so far
  not_before INTEGER NOT NULL DEFAULT 0,  -- epoch ms: the next attempt waits until then (backoff)
  created_at INTEGER NOT NULL
);
CREATE INDEX alert_outbox_by_target ON alert_outbox (target, id);
-- what is failing now: a job and platform whose last finished run failed (Alertmanager re-sends it)
CREATE TABLE alerts_firing (
  job_id     INTEGER NOT NULL REFERENCES jobs(id),
  platform   TEXT NOT NULL,
  starts_at  INTEGER NOT NULL,            -- epoch ms of the first failure of this streak
  body       TEXT NOT NULL,               -- JSON AlertEvent of the latest failure
  PRIMARY KEY (job_id, platform)
);
`,
  },
  {
    version: 12,
    name: 'run-reports',
    // what a run's last attempt told about itself: its $BUILDER_SUMMARY and what it cost
    sql: `
CREATE TABLE run_reports (
  run_id            TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
  summary           TEXT,                        -- Markdown, as the job wrote it (capped by the worker)
  summary_truncated INTEGER NOT NULL DEFAULT 0,
  cpu_ms            REAL,                        -- user + system CPU time of the job's processes
  peak_memory       INTEGER,                     -- bytes
  usage_source      TEXT                         -- how it was measured: cgroup, proc, cgroup+proc
);
`,
  },
  {
    version: 13,
    name: 'prepare-step',
    sql: `
ALTER TABLE jobs ADD COLUMN prepare TEXT;   -- the step before the script (root, network); NULL: none
ALTER TABLE jobs ADD COLUMN prepares TEXT;  -- JSON {platform: prepare} from a template; NULL: jobs.prepare for all
ALTER TABLE runs ADD COLUMN prepare TEXT;   -- the prepare step this run executes (its platform's), NULL: none
`,
  },
  {
    version: 14,
    name: 'run-environments-and-rebuilds',
    sql: `
-- a base's package list, once per distinct list (most runs of a worker share one)
CREATE TABLE environment_packages (
  sha256   TEXT PRIMARY KEY,  -- of the canonical list text (@builder/protocol packageListText)
  packages TEXT NOT NULL      -- JSON [[name, version, arch], ...] sorted by name
);
-- JSON Environment the worker reported with started, without the package list (see environment_packages)
ALTER TABLE runs ADD COLUMN environment TEXT;
-- the number of the run of the same job this one rebuilds (execute --rebuild N); NULL: not a rebuild
ALTER TABLE runs ADD COLUMN rebuild_of INTEGER;
`,
  },
  {
    version: 15,
    name: 'package-repositories',
    sql: `
-- an apt (and FreeBSD pkg) repository fed by the succeeded runs of some jobs
CREATE TABLE repos (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL UNIQUE,
  suite       TEXT NOT NULL,
  component   TEXT NOT NULL DEFAULT 'main',
  keep        INTEGER NOT NULL DEFAULT 3,   -- versions kept of each package (older ones can be pinned)
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
-- the jobs (and platforms; '' for every platform) whose package files the repository carries
CREATE TABLE repo_sources (
  repo_id   INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  job_id    INTEGER NOT NULL REFERENCES jobs(id),
  platform  TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (repo_id, job_id, platform)
);
-- what each stored .deb / .pkg blob is, read once from its control file or manifest
CREATE TABLE package_files (
  sha256    TEXT PRIMARY KEY,
  kind      TEXT NOT NULL,              -- 'deb' or 'pkg'
  name      TEXT,
  version   TEXT,
  arch      TEXT,                       -- Debian architecture, or the FreeBSD ABI
  fields    TEXT,                       -- deb: the control paragraph; pkg: the compact manifest (JSON)
  problem   TEXT,                       -- why it is not a valid package (kept out of every index); NULL: valid
  read_at   INTEGER NOT NULL
);
-- the published indices of a repository, newest generation last; older ones kept for by-hash readers
CREATE TABLE repo_generations (
  repo_id     INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  generation  INTEGER NOT NULL,
  created_at  INTEGER NOT NULL,
  files       TEXT NOT NULL,            -- JSON {path: {sha256, size}}: index files under DATA/repos/files/
  packages    TEXT NOT NULL,            -- JSON [{kind, name, version, arch, filename, sha256, size, runId}]
  PRIMARY KEY (repo_id, generation)
);
`,
  },
  {
    version: 16,
    name: 'history-indexes',
    // what the pages and answers that grow with history read, so none of them scans a job's runs
    // (each found by EXPLAIN QUERY PLAN on 100,000 runs: bench longHistory, store/history-plans.test.ts)
    sql: `
-- runs newest first, of every job (the runs answer) or of one (latest, runs --job)
CREATE INDEX runs_by_queued ON runs (queued_at, number);
CREATE INDEX runs_by_job_queued ON runs (job_id, queued_at, number);
-- the newest run of a job on each platform (the jobs page), the run before and after on the run page
CREATE INDEX runs_by_job_platform ON runs (job_id, platform, number);
-- the newest success per platform (latest links), the run finished before (a recovery? at every
-- run's end); only finished runs, so a run enters it once, when it ends
CREATE INDEX runs_by_job_platform_finished ON runs (job_id, platform, finished_at, number) WHERE finished_at IS NOT NULL;
-- a job's rebuilds (the job and run pages)
CREATE INDEX runs_rebuilds ON runs (job_id, rebuild_of, number) WHERE rebuild_of IS NOT NULL;
`,
  },
  {
    version: 17,
    name: 'run-trigger-kinds',
    // runs.trigger's CHECK predates push hooks, after: chains, rebuilds and uploads: those runs keep
    // trigger 'manual' there and say what started them here (NULL: trigger says it all)
    sql: `ALTER TABLE runs ADD COLUMN trigger_kind TEXT;`,
  },
];
