import { ErrorCode, ProtocolError, type MethodParams, type RepoView } from '@builder/protocol';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { RepoPublisher } from '../repos/publisher.ts';
import type { GroupCommit } from '../store/group-commit.ts';
import type { JobStore } from '../store/jobs.ts';
import type { RepoRow, RepoStore } from '../store/repos.ts';
import type { Handled } from './methods.ts';

export interface RepoApiDeps {
  repos: RepoStore;
  repoPublisher: Pick<RepoPublisher, 'update'>;
  jobs: Pick<JobStore, 'get'>;
  commit: Pick<GroupCommit, 'write'>;
  clock: Clock;
  logger: Logger;
}

/** `repo create|list|show|rm`: package repositories made of jobs. */
export function repoHandlers(ctx: RepoApiDeps) {
  const find = (name: string): RepoRow => {
    const r = ctx.repos.get(name);
    if (!r) throw new ProtocolError(ErrorCode.NotFound, `no repository named "${name}" (builder-client repo list)`);
    return r;
  };
  return {
    repoCreate: (p: MethodParams<'repoCreate'>): Handled<'repoCreate'> => {
      const sources = p.jobs.map((s) => {
        const job = ctx.jobs.get(s.job);
        if (!job)
          throw new ProtocolError(ErrorCode.NotFound, `no job named "${s.job}" (builder-client jobs lists them)`);
        if (s.platform !== undefined && !job.platforms.includes(s.platform)) {
          throw new ProtocolError(
            ErrorCode.InvalidArgument,
            `job ${job.name} does not build for platform ${s.platform} (it builds for: ${job.platforms.join(', ')})`,
          );
        }
        return { jobId: job.id, platform: s.platform ?? '' };
      });
      const created = ctx.commit.write(() =>
        ctx.repos.set({ name: p.name, suite: p.suite, component: p.component, keep: p.keep, sources }, ctx.clock.now()),
      );
      ctx.logger.info(created ? 'repo.created' : 'repo.changed', { repo: p.name, suite: p.suite, jobs: p.jobs.length });
      return {
        result: { repo: repoView(ctx.repos, find(p.name)), created },
        afterReply: () => void ctx.repoPublisher.update(p.name),
      };
    },
    repoList: (): Handled<'repoList'> => ({ result: ctx.repos.list().map((r) => repoView(ctx.repos, r)) }),
    repoShow: (p: MethodParams<'repoShow'>): Handled<'repoShow'> => ({ result: repoView(ctx.repos, find(p.name)) }),
    repoRemove: (p: MethodParams<'repoRemove'>): Handled<'repoRemove'> => {
      const r = find(p.name);
      ctx.commit.write(() => ctx.repos.remove(r.name));
      ctx.logger.info('repo.removed', { repo: r.name });
      return { result: { name: r.name } };
    },
  };
}

/** What `repo show` and `repo list` print: settings, the published packages, refused files. */
export function repoView(repos: RepoStore, r: RepoRow): RepoView {
  const gen = repos.generations(r.id).at(-1);
  return {
    name: r.name,
    suite: r.suite,
    component: r.component,
    keep: r.keep,
    jobs: r.sources.map((s) => ({ job: s.job, platform: s.platform || null })),
    generation: gen?.generation ?? null,
    publishedAt: gen?.createdAt ?? null,
    packages: (gen?.packages ?? []).map((p) => ({
      kind: p.kind,
      name: p.name,
      version: p.version,
      arch: p.arch,
      filename: p.filename,
      sha256: p.sha256,
      size: p.size,
      job: p.job,
      number: p.number,
    })),
    refused: repos.refused(r.id).map(({ job, number, path, problem }) => ({ job, number, path, problem })),
  };
}
