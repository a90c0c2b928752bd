import type { RepoKeys } from '../../repos/signing.ts';
import type { PublishedPackage, RepoRow, RepoStore } from '../../store/repos.ts';
import { time } from '../format.ts';
import { html } from '../html.ts';
import { scrollTable } from '../scroll-table.ts';
import { links } from '../links.ts';
import { PageError, type Page } from './page.ts';

/** What the repository pages read: the repositories, their generations and the signing keys once made. */
export interface RepoPageDeps {
  repos: RepoStore;
  repoPublisher: { keysNow(): RepoKeys | undefined };
}

/** `/repos`: every repository with its suite, sources and package count. */
export function reposPage(ctx: RepoPageDeps, base: string): Page {
  const repos = ctx.repos.list().map((r) => ({ repo: r, gen: ctx.repos.generations(r.id).at(-1) }));
  const data = repos.map(({ repo, gen }) => ({
    ...repoSummary(repo, base),
    packages: gen?.packages.length ?? 0,
    publishedAt: gen?.createdAt ?? null,
  }));
  const body = html`<h1>Package repositories</h1>
    ${
      repos.length === 0
        ? html`<p class="muted">
            No repository yet: <code>builder-client repo create NAME --suite bookworm --job JOB</code>.
          </p>`
        : scrollTable(
            ['name', 'suite', 'jobs', 'packages', 'published'],
            repos.map(
              ({ repo, gen }) =>
                html`<tr>
                  <td><a href="${repoLink(repo.name)}">${repo.name}</a></td>
                  <td>${repo.suite}</td>
                  <td>${sourcesText(repo)}</td>
                  <td>${gen?.packages.length ?? 0}</td>
                  <td>${gen ? time(gen.createdAt) : 'not yet'}</td>
                </tr>`,
            ),
          )
    }`;
  return { meta: { title: 'Package repositories' }, data: { repos: data }, body };
}

/** `/repo/NAME`: how to add it (sources.list, deb822, the key, pkg.conf), its packages and what was refused. */
export function repoPage(ctx: RepoPageDeps, name: string, base: string): Page {
  const repo = ctx.repos.get(name);
  if (!repo) throw new PageError(404, `no repository named ${name} (builder-client repo list)`);
  const gens = ctx.repos.generations(repo.id);
  const gen = gens.at(-1);
  const keys = ctx.repoPublisher.keysNow();
  const summary = repoSummary(repo, base);
  const refused = ctx.repos.refused(repo.id);
  const packages = (gen?.packages ?? []).map((p) => ({
    ...p,
    url: `${summary.url}/${p.filename}`,
    run: links.run(p.job, p.number),
    provenance: links.provenance(p.job, p.number),
  }));
  const data = {
    ...summary,
    generation: gen?.generation ?? null,
    publishedAt: gen?.createdAt ?? null,
    keyFingerprint: keys?.fingerprint ?? null,
    publicKey: keys?.armored ?? null,
    packages,
    refused,
  };
  const debs = packages.filter((p) => p.kind === 'deb');
  const pkgs = packages.filter((p) => p.kind === 'pkg');
  const body = html`<h1>Repository ${repo.name}</h1>
    <p>
      Suite <code>${repo.suite}</code>, component <code>${repo.component}</code>, fed by the succeeded runs of
      ${sourcesText(repo)}; the last ${repo.keep} versions of each package are kept.
      ${gen ? html`Published ${time(gen.createdAt)} (generation ${gen.generation}).` : 'Nothing published yet.'}
    </p>
    <section aria-labelledby="apt-heading">
      <h2 id="apt-heading">apt</h2>
      <p>Fetch the key, then add the repository (one of the two forms):</p>
      <pre tabindex="0">${summary.keyCommand}</pre>
      <p><code>/etc/apt/sources.list.d/${repo.name}.list</code>:</p>
      <pre tabindex="0">${summary.sourcesList}</pre>
      <p><code>/etc/apt/sources.list.d/${repo.name}.sources</code>:</p>
      <pre tabindex="0">${summary.deb822}</pre>
    </section>
    <section aria-labelledby="packages-heading">
      <h2 id="packages-heading">Packages</h2>
      ${
        packages.length === 0
          ? html`<p class="muted">
              No package yet: a succeeded run of its jobs that leaves .deb or .pkg files adds them.
            </p>`
          : scrollTable(
              ['package', 'version', 'architecture', 'built by', 'provenance', 'SHA-256'],
              [...debs, ...pkgs].map((p) => packageRow(p, summary.url)),
            )
      }
    </section>
    ${
      refused.length === 0
        ? ''
        : html`<section aria-labelledby="refused-heading">
            <h2 id="refused-heading">Refused files</h2>
            <p>These files of its runs are not valid packages: they are in no index and not served here.</p>
            <ul>
              ${refused.map(
                (r) =>
                  html`<li>
                    <a href="${links.run(r.job, r.number)}">${r.job}#${r.number}</a> <code>${r.path}</code>:
                    ${r.problem}
                  </li>`,
              )}
            </ul>
          </section>`
    }
    <section aria-labelledby="key-heading">
      <h2 id="key-heading">Signing key</h2>
      ${
        keys
          ? html`<p>
                Fingerprint <code>${keys.fingerprint}</code>; also at <a href="/repo/key.asc">/repo/key.asc</a> and,
                binary, <a href="/repo/key.gpg">/repo/key.gpg</a>.
              </p>
              <pre tabindex="0">${keys.armored}</pre>`
          : html`<p class="muted">The key is being made.</p>`
      }
    </section>
    ${
      pkgs.length === 0 && !repo.sources.length
        ? ''
        : html`<section aria-labelledby="pkg-heading">
            <h2 id="pkg-heading">FreeBSD pkg</h2>
            <p>
              Save <a href="/repo/pkg-key.pem">/repo/pkg-key.pem</a> as
              <code>/usr/local/etc/pkg/keys/builder.pem</code>, then
              <code>/usr/local/etc/pkg/repos/${repo.name}.conf</code>:
            </p>
            <pre tabindex="0">${summary.pkgConf}</pre>
          </section>`
    }`;
  return { meta: { title: `Repository ${repo.name}` }, data, body };
}

function packageRow(p: PublishedPackage & { url: string }, _base: string) {
  return html`<tr>
    <td><a href="${p.url}">${p.name}</a></td>
    <td>${p.version}</td>
    <td>${p.arch}</td>
    <td><a href="${links.run(p.job, p.number)}">${p.job}#${p.number}</a></td>
    <td><a href="${links.provenance(p.job, p.number)}">provenance.json</a></td>
    <td><code class="hash">${p.sha256}</code></td>
  </tr>`;
}

export function repoLink(name: string): string {
  return `/repo/${encodeURIComponent(name)}`;
}

function sourcesText(repo: RepoRow): string {
  return repo.sources.map((s) => (s.platform ? `${s.job} on ${s.platform}` : s.job)).join(', ') || 'no job';
}

/** The lines a user copies, with the server's public URL. */
function repoSummary(repo: RepoRow, base: string) {
  const url = `${base}${repoLink(repo.name)}`;
  const keyring = '/etc/apt/keyrings/builder.gpg';
  return {
    name: repo.name,
    suite: repo.suite,
    component: repo.component,
    keep: repo.keep,
    sources: repo.sources.map((s) => ({ job: s.job, platform: s.platform || null })),
    url,
    keyCommand: `curl -fsSL ${base}/repo/key.gpg -o ${keyring}`,
    sourcesList: `deb [signed-by=${keyring}] ${url} ${repo.suite} ${repo.component}`,
    deb822: `Types: deb\nURIs: ${url}\nSuites: ${repo.suite}\nComponents: ${repo.component}\nSigned-By: ${keyring}\n`,
    pkgConf: `${repo.name.replace(/[^A-Za-z0-9_]/g, '_')}: {\n  url: "${url}/pkg/\${ABI}",\n  signature_type: "pubkey",\n  pubkey: "/usr/local/etc/pkg/keys/builder.pem",\n  enabled: yes\n}\n`,
  };
}
