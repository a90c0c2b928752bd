import {
  formatDuration,
  isTerminal,
  type InfoView,
  type JobView,
  type RunView,
  type WorkerView,
} from '@builder/protocol';
import {
  formatInZone,
  formatOutcome,
  formatRelative,
  formatRunState,
  formatTable,
  formatTime,
  runLabel,
} from './format.ts';

/** Human views of server results: compact tables and key/value blocks. */

function took(run: RunView, now: number): string {
  if (run.startedAt === null) return '-';
  return formatDuration((run.finishedAt ?? now) - run.startedAt);
}

/** Why it waits (queued), where it runs, or how it ended. */
function detail(run: RunView): string {
  if (run.state === 'queued') return run.waiting ?? '';
  if (isTerminal(run.state)) return formatOutcome(run);
  return '';
}

export function renderRuns(runs: readonly RunView[], now: number): string {
  if (runs.length === 0) return '(no runs)';
  return formatTable(
    ['RUN', 'PLATFORM', 'STATE', 'QUEUED', 'TOOK', 'WORKER', 'ID', 'DETAIL'],
    runs.map((r) => [
      runLabel(r),
      r.platform,
      r.attempt > 1 ? `${r.state} #${r.attempt}` : r.state,
      formatRelative(r.queuedAt, now),
      took(r, now),
      r.worker ?? '-',
      r.id,
      detail(r),
    ]),
  );
}

export function renderJobs(jobs: readonly JobView[], now: number): string {
  if (jobs.length === 0) return '(no jobs)';
  return formatTable(
    ['NAME', 'PLATFORMS', 'SCHEDULE', 'NEXT', 'LAST'],
    jobs.map((j) => [
      j.name,
      j.platforms.join(','),
      j.schedule === null ? 'on demand' : j.timezone === 'UTC' ? j.schedule : `${j.schedule} ${j.timezone}`,
      j.nextRunAt === null ? '-' : formatRelative(j.nextRunAt, now),
      j.lastRun ? `${runLabel(j.lastRun)} ${formatRunState(j.lastRun)}` : '-',
    ]),
  );
}

export function renderWorkers(workers: readonly WorkerView[], now: number): string {
  if (workers.length === 0) return '(no workers)';
  return formatTable(
    ['NAME', 'PLATFORM', 'EXECUTOR', 'STATUS', 'RUNS', 'LAST SEEN', 'LABELS'],
    workers.map((w) => [
      w.name,
      w.platform,
      w.executor,
      w.connected ? 'online' : 'offline',
      `${w.runs.length}/${w.capacity}`,
      w.lastSeenAt === null ? '-' : formatRelative(w.lastSeenAt, now),
      w.labels.join(','),
    ]),
  );
}

export function renderInfo(info: InfoView): string {
  const now = info.now;
  const platforms =
    info.platforms.length === 0
      ? '(no platforms)'
      : formatTable(
          ['PLATFORM', 'WORKERS', 'QUEUED', 'RUNNING', 'STATUS'],
          info.platforms.map((p) => [
            p.platform,
            String(p.workers),
            String(p.queued),
            String(p.running),
            p.dropped ? 'dropped' : 'active',
          ]),
        );
  return [
    `server ${info.version}, ${info.jobs} job(s), ${info.workers.filter((w) => w.connected).length} worker(s) online, ${formatTime(now)}`,
    '',
    platforms,
    '',
    'Workers:',
    renderWorkers(info.workers, now),
    '',
    `Queued (${info.queued.length}):`,
    renderRuns(info.queued, now),
    '',
    `Running (${info.running.length}):`,
    renderRuns(info.running, now),
    ...(info.reclaimed.assigned + info.reclaimed.running === 0
      ? []
      : [
          '',
          `Reclaimed since start: ${info.reclaimed.assigned} assignment(s) a worker never had (re-queued), ${info.reclaimed.running} running attempt(s) a worker lost`,
        ]),
  ].join('\n');
}

function keyValues(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join('\n');
}

function paramsText(params: Record<string, string>): string {
  const entries = Object.entries(params);
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(' ');
}

export function renderJob(job: JobView, runs: readonly RunView[], now: number): string {
  const block = keyValues([
    ['job', job.name],
    ['platforms', job.platforms.join(', ')],
    ['schedule', job.schedule === null ? 'on demand' : `${job.schedule} (${job.timezone}), missed: ${job.missed}`],
    [
      'next run',
      job.nextRunAt === null
        ? 'on demand'
        : `${formatInZone(job.nextRunAt, job.timezone)} (${formatRelative(job.nextRunAt, now)})`,
    ],
    ['timeout', `${formatDuration(job.timeoutSec * 1000)}, kill grace ${formatDuration(job.killGraceSec * 1000)}`],
    ['retries', `${job.retries}, backoff ${formatDuration(job.retryBackoffSec * 1000)}`],
    ['concurrency', String(job.concurrency)],
    ['params', paramsText(job.params)],
    ...(job.secrets.length === 0 ? [] : [['secrets', job.secrets.join(', ')] as const]),
    ...(job.source === null ? [] : [['source', `${job.source.git} ${job.source.ref}`] as const]),
    ...(job.after === null ? [] : [['after', job.after] as const]),
    ...(job.template === null ? [] : [['template', `${job.template.name} ${paramsText(job.template.vars)}`] as const]),
  ]);
  const prepare = job.prepare === undefined ? [] : ['', 'Prepare (root, network):', job.prepare.replace(/\n$/, '')];
  const prepares = Object.entries(job.prepares ?? {}).flatMap(([platform, text]) => [
    '',
    `Prepare (${platform}, root, network):`,
    text.replace(/\n$/, ''),
  ]);
  const script = job.script === undefined ? [] : ['', 'Script:', job.script.replace(/\n$/, '')];
  const scripts = Object.entries(job.scripts ?? {}).flatMap(([platform, text]) => [
    '',
    `Script (${platform}):`,
    text.replace(/\n$/, ''),
  ]);
  return [block, ...prepare, ...prepares, ...script, ...scripts, '', 'Runs:', renderRuns(runs, now)].join('\n');
}

export function renderRun(run: RunView, now: number): string {
  const pairs: [string, string][] = [
    ['run', `${runLabel(run)} (${run.id})`],
    ['platform', run.platform],
    ['state', formatRunState(run)],
    ['attempt', `${run.attempt} of ${run.maxAttempts}`],
    ['trigger', run.trigger],
    ['worker', run.worker ?? '-'],
    ['params', paramsText(run.params)],
    ...(run.ref === null ? [] : [['source', `${run.ref} at ${run.commit ?? '(not fetched yet)'}`] as [string, string]]),
    ['queued', `${formatTime(run.queuedAt)} (${formatRelative(run.queuedAt, now)})`],
  ];
  if (run.notBefore !== null) pairs.push(['not before', formatTime(run.notBefore)]);
  if (run.startedAt !== null) pairs.push(['started', formatTime(run.startedAt)]);
  if (run.finishedAt !== null) pairs.push(['finished', formatTime(run.finishedAt)]);
  if (run.startedAt !== null) pairs.push(['took', took(run, now)]);
  if (run.cancelReason !== null) pairs.push(['cancel reason', run.cancelReason]);
  if (run.after !== null) pairs.push(['after', `${run.after.job}#${run.after.number}`]);
  const inputs =
    run.inputs.length === 0
      ? []
      : [
          '',
          'Inputs:',
          ...run.inputs.map(
            (i) =>
              `  ${i.name}  ${i.size} bytes  sha256 ${i.sha256}  ${i.from === null ? 'sent with execute' : `from ${i.from.job}#${i.from.number}:${i.from.path}`}`,
          ),
        ];
  const prepare = run.prepare === undefined ? [] : ['', 'Prepare (root, network):', run.prepare.replace(/\n$/, '')];
  const script = run.script === undefined ? [] : ['', 'Script:', run.script.replace(/\n$/, '')];
  return [keyValues(pairs), ...inputs, ...prepare, ...script].join('\n');
}
