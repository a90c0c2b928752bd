import { execFile } from 'node:child_process';
import type { Clock } from '../clock.ts';
import type { FiringRow } from '../store/alert-outbox.ts';
import type { AlertEvent } from './events.ts';

/** Somewhere alerts go. `send` resolves when delivered, rejects (to be retried) when not. */
export interface AlertTarget {
  /** For logs and the outbox: `webhook http://…`, `alertmanager http://…`, `after /path`. */
  readonly name: string;
  send(event: AlertEvent, timeoutMs: number): Promise<void>;
  /** Alertmanager only: post what is still firing again, so it stays firing. */
  resend?(firing: FiringRow[], timeoutMs: number): Promise<void>;
}

/** A target's name without what may be a secret (a webhook URL's path and query): for metric labels. */
export function targetLabel(name: string): string {
  const space = name.indexOf(' ');
  const kind = name.slice(0, space);
  const where = name.slice(space + 1);
  if (kind === 'after') return name;
  try {
    return `${kind} ${new URL(where).origin}`;
  } catch {
    return kind;
  }
}

async function postJson(url: string, body: unknown, timeoutMs: number): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'builder-server' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text().catch(() => '');
  if (!res.ok) throw new Error(`HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
}

/** POST the event as JSON: {event, job, run: {id, number, platform, state, result, url}, time}. */
export function webhookTarget(url: string): AlertTarget {
  return { name: `webhook ${url}`, send: (event, timeoutMs) => postJson(url, event, timeoutMs) };
}

export type AlertmanagerAlert = {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  generatorURL?: string;
  startsAt: string;
  endsAt?: string;
};

const ALERTNAME = {
  failure: 'BuilderRunFailed',
  recovery: 'BuilderRunFailed',
  lost: 'BuilderRunLost',
  missed: 'BuilderScheduleMissed',
  'storage-full': 'BuilderStorageFull',
} as const;
const SEVERITY = {
  failure: 'critical',
  recovery: 'critical',
  lost: 'warning',
  missed: 'warning',
  'storage-full': 'critical',
} as const;

/** When Alertmanager's copy of a firing alert ends unless it is sent again. */
export interface FiringWindow {
  /** Epoch ms now. */
  now: number;
  /** endsAt = now + this: a few resend intervals, so one lost post does not resolve it. */
  aheadMs: number;
}

/**
 * The Alertmanager v2 `postableAlerts` body for one event. A failure fires with `endsAt` ahead of
 * now (re-sent until the recovery; see OutboxSender); the recovery posts the same label set with
 * `endsAt` at its own time, which resolves it. One-off events (lost, missed, storage-full) carry no
 * `endsAt`: Alertmanager resolves them after its `resolve_timeout`.
 */
export function alertmanagerAlerts(
  e: AlertEvent,
  publicUrl: string,
  window?: FiringWindow,
  startsAt?: string,
): AlertmanagerAlert[] {
  const labels: Record<string, string> = {
    alertname: ALERTNAME[e.event],
    // not `job`: Prometheus and its rules use that for the scrape job
    builder_job: e.job,
    platform: e.run?.platform ?? (e.platforms ?? []).join(','),
    severity: SEVERITY[e.event],
  };
  // an empty label is no label to Alertmanager (storage-full concerns no job or platform)
  for (const [k, v] of Object.entries(labels)) if (v === '') delete labels[k];
  const ref = e.run ? `${e.job}/${e.run.number}` : e.job;
  const summary =
    e.event === 'failure'
      ? `${ref} on ${labels.platform} failed: ${e.run!.result}`
      : e.event === 'recovery'
        ? `${e.job} on ${labels.platform} succeeded again (${ref})`
        : e.event === 'lost'
          ? `${ref} on ${labels.platform}: attempt ${e.run!.attempt} lost (run is ${e.run!.state})`
          : e.event === 'storage-full'
            ? 'builder-server refuses writes: its data dir is full'
            : `${e.job}: schedule slot ${e.due} missed while the server was down`;
  const description =
    e.event === 'missed'
      ? `policy ${e.policy}: ${e.policy === 'once' ? 'one catch-up run queued' : 'slot skipped'}`
      : e.event === 'storage-full'
        ? `${e.cause}; ${e.freeBytes ?? 'unknown'} bytes free. New runs, console output and artifacts are refused until there is room; it resumes by itself.`
        : `run ${e.run!.id} attempt ${e.run!.attempt}: ${e.run!.result}, state ${e.run!.state}`;
  const annotations: Record<string, string> = { summary, description };
  if (e.run) {
    annotations.run_url = e.run.url;
    annotations.result = e.run.result;
  }
  const alert: AlertmanagerAlert = {
    labels,
    annotations,
    generatorURL: e.run?.url ?? publicUrl,
    startsAt: startsAt ?? e.time,
  };
  if (e.event === 'recovery') alert.endsAt = e.time;
  else if (e.event === 'failure' && window) alert.endsAt = new Date(window.now + window.aheadMs).toISOString();
  return [alert];
}

/**
 * POST to `URL/api/v2/alerts` (the path is added unless the URL already ends with it). Firing
 * alerts get `endsAt` `aheadMs` from now, on the first post and on every re-send.
 */
export function alertmanagerTarget(
  url: string,
  publicUrl: () => string,
  window: { clock: Clock; aheadMs: number },
): AlertTarget {
  const endpoint = /\/api\/v2\/alerts\/?$/.test(url) ? url : `${url.replace(/\/+$/, '')}/api/v2/alerts`;
  const now = (): FiringWindow => ({ now: window.clock.now(), aheadMs: window.aheadMs });
  return {
    name: `alertmanager ${endpoint}`,
    send: (event, timeoutMs) => postJson(endpoint, alertmanagerAlerts(event, publicUrl(), now()), timeoutMs),
    resend: (firing, timeoutMs) => {
      const w = now();
      const body = firing.flatMap((f) =>
        alertmanagerAlerts(JSON.parse(f.body) as AlertEvent, publicUrl(), w, new Date(f.startsAt).toISOString()),
      );
      return postJson(endpoint, body, timeoutMs);
    },
  };
}

/** The environment an after-hook gets (on top of the server's own). */
export function afterEnv(e: AlertEvent): Record<string, string> {
  return {
    EVENT: e.event,
    JOB: e.job,
    RUN: e.run ? String(e.run.number) : '',
    RUN_ID: e.run?.id ?? '',
    RESULT: e.run?.state ?? '',
    RESULT_DETAIL: e.run?.result ?? '',
    PLATFORM: e.run?.platform ?? (e.platforms ?? []).join(','),
    URL: e.run?.url ?? '',
    TIME: e.time,
    DUE: e.due ?? '',
    CAUSE: e.cause ?? '',
  };
}

/** Run an executable (like Laminar's `after`) with the event in its environment; non-zero exit fails. */
export function afterTarget(path: string): AlertTarget {
  return {
    name: `after ${path}`,
    send: (event, timeoutMs) =>
      new Promise<void>((resolve, reject) => {
        execFile(
          path,
          [],
          {
            env: { ...process.env, ...afterEnv(event) },
            timeout: timeoutMs,
            killSignal: 'SIGKILL',
            maxBuffer: 1 << 20,
          },
          (err, _stdout, stderr) => {
            if (!err) return resolve();
            const why = err.killed ? `timed out after ${timeoutMs}ms` : err.message;
            reject(new Error(`${why}${stderr ? `: ${String(stderr).trim().slice(0, 200)}` : ''}`));
          },
        );
      }),
  };
}
