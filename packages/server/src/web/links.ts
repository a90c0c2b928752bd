import { artifactUrlPath } from '@builder/protocol';

/** Site URLs; every name from the store is percent-encoded. */
export const links = {
  home: (): string => '/',
  job: (job: string, query?: Record<string, string | number | undefined>): string =>
    `/job/${encodeURIComponent(job)}${queryString(query)}`,
  run: (job: string, number: number): string => `/job/${encodeURIComponent(job)}/run/${number}`,
  artifact: (job: string, number: number, path: string): string =>
    `${links.run(job, number)}/artifacts/${artifactUrlPath(path)}`,
  console: (job: string, number: number): string => `${links.run(job, number)}/console.txt`,
  badge: (job: string, platform?: string): string =>
    `/badge/${encodeURIComponent(job)}.svg${queryString({ platform })}`,
  feed: (job?: string): string => (job === undefined ? '/feed.atom' : `/job/${encodeURIComponent(job)}/feed.atom`),
  latest: (job: string, path: string, platform?: string): string =>
    `/job/${encodeURIComponent(job)}/latest/${artifactUrlPath(path)}${queryString({ platform })}`,
  chart: (job: string): string => `/job/${encodeURIComponent(job)}/chart.svg`,
  hash: (sha256: string): string => `/hash${queryString({ sha256 })}`,
  failed: (): string => '/failed',
  workers: (): string => '/workers',
  compare: (job: string, a: number, b: number): string => `/job/${encodeURIComponent(job)}/compare/${a}/${b}`,
  provenance: (job: string, number: number): string => `${links.run(job, number)}/provenance.json`,
  provenanceKey: (): string => '/provenance-key.pem',
};

function queryString(query: Record<string, string | number | undefined> | undefined): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
