import type { IncomingMessage, ServerResponse } from 'node:http';
import { artifactPathProblem } from '@builder/protocol';
import type { Context } from '../context.ts';
import { badgeRun, recentFinished } from '../store/site-queries.ts';
import { badgeStatus, renderBadge } from './badge.ts';
import { feedUrn, renderAtom } from './feeds.ts';
import { html } from './html.ts';
import { layout } from './layout.ts';
import { links } from './links.ts';
import { FAILED_STATES, failedPage } from './pages/failed.ts';
import { hashPage } from './pages/hash.ts';
import { jobPage } from './pages/job.ts';
import { jobsPage } from './pages/jobs.ts';
import { PageError, type Page } from './pages/page.ts';
import { runPage } from './pages/run.ts';
import { workersPage } from './pages/workers.ts';
import { redirect, send, sendHtml, sendJson, sendText, wantsJson } from './respond.ts';

const FEED_STATES = [...FAILED_STATES, 'succeeded', 'cancelled'] as const;
const FEED_ENTRIES = 50;

/**
 * HTML pages and their JSON twins (`Accept: application/json`, or the same path under `/api/`),
 * badges, Atom feeds and stable `latest` links. Returns false for other paths.
 */
export function handlePages(ctx: Context, req: IncomingMessage, res: ServerResponse, url: URL): boolean {
  const json = wantsJson(req, url);
  const api = url.pathname === '/api' || url.pathname.startsWith('/api/');
  let segments: string[];
  try {
    segments = (api ? url.pathname.slice(4) : url.pathname)
      .split('/')
      .slice(1)
      .map((s) => decodeURIComponent(s));
  } catch {
    fail(ctx, req, res, json, new PageError(400, 'malformed percent-encoding in the URL'));
    return true;
  }
  try {
    const page = route(ctx, req, res, url, segments, api);
    if (page === 'handled') return true;
    if (page === undefined) {
      if (!api) return false;
      throw new PageError(404, `no API endpoint ${url.pathname}`);
    }
    if (json) sendJson(req, res, page.status ?? 200, page.data);
    else sendHtml(req, res, page.status ?? 200, layout(page.meta, page.body, ctx.version));
  } catch (err) {
    if (!(err instanceof PageError)) throw err;
    fail(ctx, req, res, json, err);
  }
  return true;
}

/** A Page to negotiate, 'handled' when the route answered itself, undefined when nothing matched. */
function route(
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  s: string[],
  api: boolean,
): Page | 'handled' | undefined {
  const [a, b, c, d, ...rest] = s;
  const q = url.searchParams;
  if (s.length === 1 && a === '') return jobsPage(ctx);
  if (api && s.length === 0) return jobsPage(ctx);
  if (s.length === 1 && a === 'failed') return failedPage(ctx);
  if (s.length === 1 && a === 'workers') return workersPage(ctx);
  if (s.length === 1 && a === 'hash') return hashPage(ctx, q);
  if (!api && s.length === 1 && a === 'feed.atom') {
    sendFeed(ctx, req, res, undefined);
    return 'handled';
  }
  if (!api && s.length === 2 && a === 'badge' && b?.endsWith('.svg')) {
    sendBadge(ctx, req, res, b.slice(0, -'.svg'.length), q.get('platform') || undefined);
    return 'handled';
  }
  if (a !== 'job' || b === undefined || b === '') return undefined;
  if (s.length === 2) return jobPage(ctx, b, q);
  if (c === 'run' && d !== undefined && rest.length === 0) return runPage(ctx, b, runNumber(d), q);
  if (!api && c === 'feed.atom' && s.length === 3) {
    sendFeed(ctx, req, res, b);
    return 'handled';
  }
  if (!api && c === 'latest' && d !== undefined) {
    latest(ctx, req, res, b, [d, ...rest].join('/'), q.get('platform') || undefined);
    return 'handled';
  }
  return undefined;
}

function runNumber(text: string): number {
  if (!/^[1-9][0-9]{0,14}$/.test(text)) throw new PageError(404, `no run ${text}: runs are numbered from 1`);
  return Number(text);
}

function fail(ctx: Context, req: IncomingMessage, res: ServerResponse, json: boolean, err: PageError): void {
  if (json) return sendJson(req, res, err.status, { error: err.message });
  const title = err.status === 404 ? 'Not found' : 'Bad request';
  const body = html`<h1>${title}</h1>
    <p>${err.message}</p>
    <p><a href="${links.home()}">all jobs</a></p>`;
  sendHtml(req, res, err.status, layout({ title }, body, ctx.version));
}

/** `/job/J/latest/PATH[?platform=P]` → the file in the job's latest successful run. */
function latest(
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  job: string,
  path: string,
  platform: string | undefined,
): void {
  const problem = artifactPathProblem(path);
  if (problem) return sendText(req, res, 400, `not an artifact path: ${problem}`);
  if (!ctx.jobs.getAny(job)) return sendText(req, res, 404, `no job named ${job}`);
  const origin = ctx.artifacts.latest(job, path, platform);
  if (!origin) {
    const where = platform === undefined ? '' : ` on platform ${platform}`;
    return sendText(
      req,
      res,
      404,
      `the latest successful run of ${job}${where} has no artifact ${path} (or the job has no successful run)`,
    );
  }
  redirect(req, res, links.artifact(origin.job, origin.number, origin.path));
}

/** `/badge/J.svg[?platform=P]`; an unknown job still gets a badge (saying unknown), with a 404. */
function sendBadge(
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  name: string,
  platform: string | undefined,
): void {
  const job = ctx.jobs.getAny(name);
  const status = job ? badgeStatus(badgeRun(ctx.db, job.id, platform)?.state) : 'unknown';
  send(req, res, job ? 200 : 404, 'image/svg+xml; charset=utf-8', renderBadge(name, status));
}

/** `/feed.atom` and `/job/J/feed.atom`: the most recently finished runs. */
function sendFeed(ctx: Context, req: IncomingMessage, res: ServerResponse, name: string | undefined): void {
  let jobId: number | undefined;
  if (name !== undefined) {
    const job = ctx.jobs.getAny(name);
    if (!job) return sendText(req, res, 404, `no job named ${name}`);
    jobId = job.id;
  }
  const runs = recentFinished(ctx.db, FEED_STATES, FEED_ENTRIES, jobId);
  const body = renderAtom({
    id: feedUrn(name === undefined ? 'all' : `job:${name}`),
    title: name === undefined ? 'builder: finished runs' : `builder: finished runs of ${name}`,
    self: links.feed(name),
    alternate: name === undefined ? links.home() : links.job(name),
    ...(ctx.publicUrl !== undefined && { base: ctx.publicUrl }),
    runs,
    now: ctx.clock.now(),
  });
  send(req, res, 200, 'application/atom+xml; charset=utf-8', body);
}
