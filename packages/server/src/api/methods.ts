import { randomBytes } from 'node:crypto';
import {
  ErrorCode,
  ProtocolError,
  isTerminal,
  parseRunRef,
  type InfoView,
  type MethodName,
  type MethodParams,
  type MethodResult,
  type PlatformView,
} from '@builder/protocol';
import type { ObserverSink, Observers } from '../console/observers.ts';
import type { Registry } from '../workers/registry.ts';
import type { RunEvents } from '../run-events.ts';
import type { ActiveRuns } from '../runs/active.ts';
import type { Lifecycle } from '../runs/lifecycle.ts';
import { enqueueRebuild, enqueue, type EnqueueDeps } from '../runs/enqueue.ts';
import { resolveInputs } from '../runs/inputs.ts';
import { checkAfter } from '../runs/chains.ts';
import type { InputStore } from '../store/inputs.ts';
import { nextAfter, normalizeSchedule, validateTimezone } from '../scheduler/cron.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import type { ArtifactStore } from '../store/artifacts.ts';
import type { JobStore } from '../store/jobs.ts';
import type { PlatformStore } from '../store/platforms.ts';
import type { JobRow, RunRow } from '../store/rows.ts';
import type { RunStore } from '../store/runs.ts';
import type { HookStore } from '../store/hooks.ts';
import type { SecretStore } from '../store/secrets.ts';
import type { WorkerStore } from '../store/workers.ts';
import { jobView, runView, workerView } from '../runs/views.ts';
import { repoHandlers, type RepoApiDeps } from './repo-methods.ts';

/** A client connection as the methods see it. */
export interface ClientSession {
  readonly sink: ObserverSink;
  nextSub(): number;
}

export interface Handled<M extends MethodName> {
  result: MethodResult<M>;
  /** Runs after the response was sent (e.g. start streaming an observed console). */
  afterReply?: () => void;
}

type Handlers = { [M in MethodName]: (p: MethodParams<M>, s: ClientSession) => Handled<M> };

export interface ApiDeps extends EnqueueDeps, Omit<RepoApiDeps, 'jobs' | 'commit' | 'clock' | 'logger'> {
  jobs: JobStore;
  runs: RunStore;
  platforms: PlatformStore;
  secrets: SecretStore;
  hooks: HookStore;
  artifacts: Pick<ArtifactStore, 'forRun' | 'file' | 'latest'>;
  inputs: InputStore;
  workers: Pick<WorkerStore, 'list'>;
  registry: Registry;
  active: Pick<ActiveRuns, 'reclaimed'>;
  observers: Pick<Observers, 'add' | 'remove'>;
  events: RunEvents;
  version: string;
  lifecycle: Pick<Lifecycle, 'cancel'>;
  scheduler: Pick<Scheduler, 'reschedule'>;
}

/** The client verbs, on validated params. Throws ProtocolError for anything a user got wrong. */
export function createHandlers(ctx: ApiDeps): Handlers {
  const { lifecycle, scheduler } = ctx;
  const now = () => ctx.clock.now();
  const job = (name: string): JobRow => {
    const j = ctx.jobs.get(name);
    if (!j) throw new ProtocolError(ErrorCode.NotFound, `no job named "${name}" (builder-client jobs lists them)`);
    return j;
  };
  const anyJob = (name: string): JobRow => {
    const j = ctx.jobs.getAny(name);
    if (!j) throw new ProtocolError(ErrorCode.NotFound, `no job named "${name}"`);
    return j;
  };
  const run = (ref: string): RunRow => {
    const parsed = parseRunRef(ref);
    if (!parsed) {
      throw new ProtocolError(ErrorCode.InvalidArgument, `"${ref}" is not a run: give a run id (UUID) or JOB/NUMBER`);
    }
    const r = parsed.kind === 'id' ? ctx.runs.get(parsed.id) : ctx.runs.getByNumber(parsed.job, parsed.number);
    if (!r) throw new ProtocolError(ErrorCode.NotFound, `no run ${ref}`);
    return r;
  };
  const schedule = (s: string | null, tz: string) => (s === null ? null : normalizeSchedule(s, tz));

  return {
    ...repoHandlers(ctx),
    schedule: (p) => {
      validateTimezone(p.timezone);
      checkAfter(ctx.jobs, p.name, p.after);
      const sched = schedule(p.schedule, p.timezone);
      const next = sched === null ? null : nextAfter(sched, p.timezone, now());
      const spec = { ...p, schedule: sched, platforms: [...new Set(p.platforms)] };
      const { job: j, created } = ctx.commit.write(() => ctx.jobs.upsert(spec, next, now()));
      ctx.logger.info(created ? 'job.created' : 'job.updated', { job: j.name, schedule: sched, timezone: p.timezone });
      return { result: { job: jobView(j), created }, afterReply: () => scheduler.reschedule() };
    },
    unschedule: (p) => {
      const j = job(p.name);
      const waiting = ctx.runs.list({ job: j.id, state: 'queued', limit: 100_000 });
      for (const r of waiting) lifecycle.cancel(r, 'job unscheduled');
      ctx.commit.write(() => ctx.jobs.unschedule(j.id, now()));
      return { result: { name: j.name, cancelled: waiting.length }, afterReply: () => scheduler.reschedule() };
    },
    reschedule: (p) => {
      const j = job(p.name);
      const tz = p.timezone ?? j.timezone;
      validateTimezone(tz);
      const sched = p.schedule === undefined ? j.schedule : schedule(p.schedule, tz);
      const next = p.next ?? (sched === null ? null : nextAfter(sched, tz, now()));
      ctx.commit.write(() => ctx.jobs.setSchedule(j.id, sched, tz, next, now()));
      return { result: jobView(ctx.jobs.getById(j.id)!), afterReply: () => scheduler.reschedule() };
    },
    execute: (p) => {
      if (p.rebuild !== undefined) {
        if (p.platforms !== undefined || Object.keys(p.params).length > 0 || p.ref !== undefined) {
          throw new ProtocolError(
            ErrorCode.InvalidArgument,
            '--rebuild runs the same platform, parameters and commit again: it takes no --platform, --param or --ref',
          );
        }
        const r = enqueueRebuild(ctx, job(p.name), p.rebuild, p.next);
        return { result: { runs: [runView(ctx, r)] } };
      }
      const runs = enqueue(ctx, job(p.name), {
        platforms: p.platforms,
        params: p.params,
        trigger: 'manual',
        next: p.next,
        ...(p.ref !== undefined && { ref: p.ref }),
        ...((p.inputs.length > 0 || p.inputsFrom.length > 0) && {
          inputs: (platform) => resolveInputs(ctx, p.inputs, p.inputsFrom, platform),
        }),
      });
      return { result: { runs: runs.map((r) => runView(ctx, r)) } };
    },
    cancel: (p) => {
      const r = run(p.run);
      lifecycle.cancel(r, p.reason ?? 'cancelled by a user');
      return { result: runView(ctx, ctx.runs.get(r.id)!) };
    },
    info: () => ({ result: info() }),
    job: (p) => {
      const j = job(p.name);
      const runs = ctx.runs.list({ job: j.id, limit: 20 }).map((r) => runView(ctx, r));
      return { result: { job: jobView(j, { script: true, lastRun: runs[0] ?? null }), runs } };
    },
    jobs: () => ({
      result: ctx.jobs.list().map((j) => {
        const last = ctx.runs.latest({ job: j.id });
        return jobView(j, { lastRun: last ? runView(ctx, last) : null });
      }),
    }),
    runs: (p) => ({
      result: ctx.runs
        .list({
          job: p.job === undefined ? undefined : anyJob(p.job).id,
          state: p.state,
          platform: p.platform,
          limit: p.limit,
        })
        .map((r) => runView(ctx, r)),
    }),
    run: (p) => ({ result: runView(ctx, run(p.run), { script: true }) }),
    artifacts: (p) => {
      const r = run(p.run);
      return { result: { run: runView(ctx, r), files: ctx.artifacts.forRun(r.id) } };
    },
    latest: (p) => {
      const r = ctx.runs.latest({
        job: p.job === undefined ? undefined : anyJob(p.job).id,
        platform: p.platform,
        params: p.params,
      });
      return { result: r ? runView(ctx, r) : null };
    },
    workers: () => ({ result: workers() }),
    dropPlatform: (p) => {
      const changed = ctx.commit.write(() => ctx.platforms.drop(p.platform, now()));
      return { result: { platform: p.platform, changed } };
    },
    undropPlatform: (p) => {
      const changed = ctx.commit.write(() => ctx.platforms.undrop(p.platform));
      if (changed) ctx.events.emit({ type: 'platform-undropped', platform: p.platform });
      return { result: { platform: p.platform, changed } };
    },
    observe: (p, session) => {
      const r = run(p.run);
      const sub = session.nextSub();
      const view = runView(ctx, r);
      return {
        result: { sub, run: view },
        afterReply: () => {
          // the run may have moved on in the batch that carried this request
          const now = ctx.runs.get(r.id) ?? r;
          const fresh = now.state === r.state ? view : runView(ctx, now);
          if (fresh !== view) session.sink.send({ type: 'event', sub, event: { kind: 'state', run: fresh } });
          ctx.observers.add({
            sub,
            runId: r.id,
            sink: session.sink,
            console: p.console,
            finished: isTerminal(now.state) ? fresh : undefined,
          });
        },
      };
    },
    unobserve: (p, session) => {
      ctx.observers.remove(session.sink, p.sub);
      return { result: {} };
    },
    secretSet: (p) => {
      const scope = p.job === undefined ? null : anyJob(p.job).name;
      const created = !ctx.secrets.list().some((s) => s.name === p.name && s.job === scope);
      ctx.commit.write(() => ctx.secrets.set(p.name, scope, p.value, now()));
      ctx.logger.info('secret.set', { secret: p.name, job: scope });
      return { result: { name: p.name, job: scope, created } };
    },
    secretList: () => ({ result: ctx.secrets.list() }),
    secretRemove: (p) => {
      const scope = p.job ?? null;
      if (!ctx.commit.write(() => ctx.secrets.remove(p.name, scope))) {
        const where = scope === null ? 'for all jobs' : `for job ${scope}`;
        throw new ProtocolError(ErrorCode.NotFound, `no secret ${p.name} ${where} (builder-client secret list)`);
      }
      ctx.logger.info('secret.removed', { secret: p.name, job: scope });
      return { result: { name: p.name, job: scope } };
    },
    commitRuns: (p) => ({
      result: ctx.runs
        .forCommit(p.commit, { job: p.job === undefined ? undefined : anyJob(p.job).id, limit: p.limit })
        .map((r) => runView(ctx, r)),
    }),
    hookSet: (p) => {
      const j = job(p.job);
      if (j.source === null) {
        throw new ProtocolError(
          ErrorCode.InvalidArgument,
          `job ${j.name} has no source: a push hook queues the pushed commit of its repository (give it --source-git first)`,
        );
      }
      const secret = p.secret ?? randomBytes(24).toString('hex');
      const branches = p.branches ?? null;
      const created = ctx.commit.write(() => ctx.hooks.set(j.id, secret, branches, now()));
      ctx.logger.info('hook.set', { job: j.name, branches });
      return { result: { job: j.name, branches, created, secret: p.secret === undefined ? secret : null } };
    },
    hookList: () => ({ result: ctx.hooks.list() }),
    hookRemove: (p) => {
      const j = anyJob(p.job);
      if (!ctx.commit.write(() => ctx.hooks.remove(j.id))) {
        throw new ProtocolError(ErrorCode.NotFound, `job ${j.name} has no push hook (builder-client hook list)`);
      }
      ctx.logger.info('hook.removed', { job: j.name });
      return { result: { job: j.name } };
    },
  };

  function workers() {
    const connected = ctx.registry.all().map(workerView);
    const names = new Set(connected.map((w) => w.name));
    const gone = ctx.workers
      .list()
      .filter((w) => !names.has(w.name))
      .map((w) => ({ ...w, connected: false, runs: [] }));
    return [...connected, ...gone].sort((a, b) => a.name.localeCompare(b.name));
  }

  function info(): InfoView {
    const platforms = new Map<string, PlatformView>();
    const entry = (platform: string) => {
      let v = platforms.get(platform);
      if (!v)
        platforms.set(
          platform,
          (v = { platform, dropped: ctx.platforms.isDropped(platform), workers: 0, queued: 0, running: 0 }),
        );
      return v;
    };
    for (const w of ctx.registry.all()) entry(w.platform).workers++;
    for (const p of ctx.platforms.droppedPlatforms()) entry(p);
    for (const c of ctx.runs.countByPlatform()) {
      if (c.state === 'queued') entry(c.platform).queued += c.n;
      else entry(c.platform).running += c.n;
    }
    return {
      version: ctx.version,
      now: now(),
      jobs: ctx.jobs.count(),
      workers: workers(),
      platforms: [...platforms.values()].sort((a, b) => a.platform.localeCompare(b.platform)),
      queued: ctx.runs.queued(100).map((r) => runView(ctx, r)),
      running: ctx.runs.active().map((r) => runView(ctx, r)),
      reclaimed: { ...ctx.active.reclaimed },
    };
  }
}
