import type { IncomingMessage, ServerResponse } from 'node:http';
import { artifactPathProblem } from '@builder/protocol';
import type { SiteDeps } from './deps.ts';
import { badgeRun, recentFinished } from '../store/site-queries.ts';
import { badgeStatus, renderBadge } from './badge.ts';
import { CHART_RUNS, renderChart } from './chart.ts';
import { chartRuns } from './pages/job-history.ts';
import { feedUrn, renderAtom } from './feeds.ts';
import { html } from './html.ts';
import { layout } from './layout.ts';
import { links } from './links.ts';
import { FAILED_STATES, failedPage } from './pages/failed.ts';
import { hashPage } from './pages/hash.ts';
import { jobPage } from './pages/job.ts';
import { jobsPage } from './pages/jobs.ts';
import { comparePage } from './pages/compare.ts';
import { PageError, type Page } from './pages/page.ts';
import { provenanceEnvelope } from './pages/provenance.ts';
import { runPage } from './pages/run.ts';
import { workersPage } from './pages/workers.ts';
import { redirect, send, sendHtml, sendJson, sendText, wantsJson } from './respond.ts';

const FEED_STATES = [...FAILED_STATES, 'succeeded', 'cancelled'] as const;
const FEED_ENTRIES = 50;

/** A page route's handler, called by the route table with the pattern's captures, still percent-encoded. */
export type WebHandler = (
  ctx: SiteDeps,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  params: readonly string[],
) => void;

/**
 * A page and its JSON twin (`Accept: application/json`, or the same path under `/api/`): the
 * captures are decoded first, a PageError becomes a 400/404 page (or JSON).
 */
function page(render: (ctx: SiteDeps, params: string[], query: URLSearchParams) => Page): WebHandler {
  return (ctx, req, res, url, params) =>
    withParams(ctx, req, res, url, params, (decoded) => {
      const p = render(ctx, decoded, url.searchParams);
      if (wantsJson(req, url)) sendJson(req, res, p.status ?? 200, p.data);
      else sendHtml(req, res, p.status ?? 200, layout(p.meta, p.body, ctx.version));
    });
}

/** Decode the captures and answer; malformed percent-encoding and PageErrors become error pages. */
function withParams(
  ctx: SiteDeps,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  params: readonly string[],
  answer: (decoded: string[]) => void,
): void {
  const json = wantsJson(req, url);
  let decoded: string[];
  try {
    // every segment of the path, as the routes before the table did: one bad escape anywhere is a 400
    for (const s of url.pathname.split('/')) decodeURIComponent(s);
    decoded = params.map((p) => p.split('/').map(decodeURIComponent).join('/'));
  } catch {
    return fail(ctx, req, res, json, new PageError(400, 'malformed percent-encoding in the URL'));
  }
  try {
    answer(decoded);
  } catch (err) {
    if (!(err instanceof PageError)) throw err;
    fail(ctx, req, res, json, err);
  }
}

export const jobsRoute = page((ctx) => jobsPage(ctx));
export const failedRoute = page((ctx) => failedPage(ctx));
export const workersRoute = page((ctx) => workersPage(ctx));
export const hashRoute = page((ctx, _, q) => hashPage(ctx, q));
export const jobRoute = page((ctx, [job = ''], q) => jobPage(ctx, job, q));
export const runRoute = page((ctx, [job = '', number = ''], q) => runPage(ctx, job, runNumber(number), q));
export const compareRoute = page((ctx, [job = '', a = '', b = '']) =>
  comparePage(ctx, job, runNumber(a), runNumber(b)),
);

/** `/job/J/run/N/provenance.json`: always JSON (a DSSE envelope), errors too. */
export const provenanceRoute: WebHandler = (ctx, req, res, url, params) =>
  withParams(ctx, req, res, url, params, ([job = '', number = '']) =>
    sendJson(req, res, 200, provenanceEnvelope(ctx, job, runNumber(number))),
  );

/** `/provenance-key.pem`: the public key every provenance document is signed with. */
export const provenanceKeyRoute: WebHandler = (ctx, req, res) =>
  send(req, res, 200, 'application/x-pem-file', ctx.provenanceKey.publicPem);

/** `/feed.atom` and `/job/J/feed.atom`. */
export const feedRoute: WebHandler = (ctx, req, res, url, params) =>
  withParams(ctx, req, res, url, params, ([job]) => sendFeed(ctx, req, res, job));

/** `/badge/J.svg[?platform=P]`. */
export const badgeRoute: WebHandler = (ctx, req, res, url, params) =>
  withParams(ctx, req, res, url, params, ([job = '']) =>
    sendBadge(ctx, req, res, job, url.searchParams.get('platform') || undefined),
  );

/** `/job/J/chart.svg`: the job page's chart as an image (for a README, a dashboard). */
export const chartRoute: WebHandler = (ctx, req, res, url, params) =>
  withParams(ctx, req, res, url, params, ([name = '']) => {
    const job = ctx.jobs.getAny(name);
    if (!job) return sendText(req, res, 404, `no job named ${name}`);
    const svg = renderChart(job.name, chartRuns(ctx, job, CHART_RUNS), { standalone: true });
    send(req, res, 200, 'image/svg+xml; charset=utf-8', svg);
  });

/** `/job/J/latest/PATH[?platform=P]`. */
export const latestRoute: WebHandler = (ctx, req, res, url, params) =>
  withParams(ctx, req, res, url, params, ([job = '', path = '']) =>
    latest(ctx, req, res, job, path, url.searchParams.get('platform') || undefined),
  );

/** What no route answers: 400 for a malformed URL, a JSON 404 under `/api/`, a plain 404 elsewhere. */
export const notFoundRoute: WebHandler = (ctx, req, res, url) =>
  withParams(ctx, req, res, url, [], () => {
    if (url.pathname === '/api' || url.pathname.startsWith('/api/')) {
      throw new PageError(404, `no API endpoint ${url.pathname}`);
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });

function runNumber(text: string): number {
  if (!/^[1-9][0-9]{0,14}$/.test(text)) throw new PageError(404, `no run ${text}: runs are numbered from 1`);
  return Number(text);
}

function fail(ctx: SiteDeps, req: IncomingMessage, res: ServerResponse, json: boolean, err: PageError): void {
  if (json) return sendJson(req, res, err.status, { error: err.message });
  const title = err.status === 404 ? 'Not found' : 'Bad request';
  const body = html`<h1>${title}</h1>
    <p>${err.message}</p>
    <p><a href="${links.home()}">all jobs</a></p>`;
  sendHtml(req, res, err.status, layout({ title }, body, ctx.version));
}

/** `/job/J/latest/PATH[?platform=P]` → the file in the job's latest successful run. */
function latest(
  ctx: SiteDeps,
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
  ctx: SiteDeps,
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
function sendFeed(ctx: SiteDeps, req: IncomingMessage, res: ServerResponse, name: string | undefined): void {
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
