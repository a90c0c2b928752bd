import type { ArtifactFile, Comparison, Environment } from '@builder/protocol';
import type { SiteDeps } from '../deps.ts';
import { compareArtifacts, isReproducible } from '../../reproduce/compare.ts';
import { rebuildsOf } from '../../store/rebuilds.ts';
import type { RunRow } from '../../store/rows.ts';
import { html, type Html } from '../html.ts';
import { links } from '../links.ts';
import { artifactSummary } from './compare.ts';

/** What a rebuild's page says of it: the run it rebuilt, and whether it made the same files. */
export interface RebuildVerdict {
  of: number;
  compare: string;
  /** null until both runs have finished. */
  reproducible: boolean | null;
  artifacts: Comparison['artifacts'] | null;
}

export function rebuildVerdict(ctx: SiteDeps, run: RunRow, files: ArtifactFile[]): RebuildVerdict | null {
  if (run.rebuildOf === null) return null;
  const original = ctx.runs.getByNumber(run.job, run.rebuildOf);
  const compare = links.compare(run.job, run.rebuildOf, run.number);
  if (!original || original.finishedAt === null || run.finishedAt === null) {
    return { of: run.rebuildOf, compare, reproducible: null, artifacts: null };
  }
  const artifacts = compareArtifacts(ctx.artifacts.forRun(original.id), files);
  return { of: run.rebuildOf, compare, reproducible: isReproducible(artifacts), artifacts };
}

/** On the original's page: its rebuilds and whether each made the same files. */
export function rebuildsOfRun(ctx: SiteDeps, run: RunRow, files: ArtifactFile[]): RebuildOfRun[] {
  return rebuildsOf(ctx.db, run.jobId, run.number).map(({ id, number }) => {
    const rebuild = ctx.runs.get(id);
    const done = rebuild !== undefined && rebuild.finishedAt !== null && run.finishedAt !== null;
    return {
      number,
      reproducible: done ? isReproducible(compareArtifacts(files, ctx.artifacts.forRun(id))) : null,
    };
  });
}

export interface RebuildOfRun {
  number: number;
  /** null until both have finished. */
  reproducible: boolean | null;
}

export function rebuildsFact(run: RunRow, rebuilds: RebuildOfRun[]): Html {
  if (rebuilds.length === 0) return html``;
  return html`<dt>rebuilt as</dt>
    <dd id="rebuilds">
      ${rebuilds.map(
        (r) =>
          html`<a href="${links.run(run.job, r.number)}">#${r.number}</a> (<a
              href="${links.compare(run.job, run.number, r.number)}"
              >${r.reproducible === null ? 'not finished' : r.reproducible ? 'reproducible' : 'differs'}</a
            >) `,
      )}
    </dd>`;
}

export function rebuildFact(run: RunRow, v: RebuildVerdict): Html {
  const of = html`<a href="${links.run(run.job, v.of)}">#${v.of}</a>`;
  const what =
    v.reproducible === null
      ? html`a rebuild of ${of}; compared once both have finished`
      : v.reproducible
        ? html`<strong>reproducible</strong>: same files as #${v.of}`
        : html`<strong>not reproducible</strong>: ${v.artifacts ? artifactSummary(v.artifacts) : ''} compared with
            #${v.of}${
              v.artifacts && v.artifacts.changed.length > 0
                ? html` (${v.artifacts.changed.map((f) => f.path).join(', ')} differ)`
                : ''
            }`;
  return html`<dt>rebuild</dt>
    <dd id="rebuild">${what} — <a href="${v.compare}">compare</a></dd>`;
}

/** Worker, executor, kernel, builder version, the base; its package list folded. */
export function environmentSection(env: Environment | null): Html {
  if (!env) return html`<p class="muted">Not reported (the run has not started, or its worker is older).</p>`;
  const base = env.base;
  return html`<dl class="facts" id="environment">
      <dt>worker</dt>
      <dd>${env.worker} (${env.executor} executor)</dd>
      <dt>kernel</dt>
      <dd><code>${env.kernel}</code></dd>
      <dt>builder</dt>
      <dd>${env.builderVersion}</dd>
      ${
        base
          ? html`<dt>base</dt>
              <dd>
                <code>${base.path}</code>${base.suite ? html` ${base.suite}` : ''}${
                  base.os && base.os !== base.suite ? html` ${base.os}` : ''
                }${base.created ? html`, created ${base.created}` : ''}${
                  base.refreshed ? html`, refreshed ${base.refreshed}` : ''
                }
              </dd>
              <dt>packages</dt>
              <dd>${base.packages.length}, SHA-256 <code class="hash">${base.packagesSha256}</code></dd>`
          : html`<dt>base</dt>
              <dd><span class="none">none: the job ran on the worker’s host</span></dd>`
      }
    </dl>
    ${
      base && base.packages.length > 0
        ? html`<details id="packages">
            <summary>${base.packages.length} packages in the base</summary>
            <pre>${base.packages.map((p) => `${p.name} ${p.version} ${p.arch}\n`).join('')}</pre>
          </details>`
        : ''
    }`;
}
