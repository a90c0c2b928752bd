/** Content types for artifact downloads; anything unknown is a plain download. */
const TYPES: Record<string, string> = {
  txt: 'text/plain; charset=utf-8',
  log: 'text/plain; charset=utf-8',
  md: 'text/plain; charset=utf-8',
  json: 'application/json',
  xml: 'application/xml',
  html: 'text/plain; charset=utf-8', // shown as text: job output never renders as a page here
  htm: 'text/plain; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gz: 'application/gzip',
  tgz: 'application/gzip',
  xz: 'application/x-xz',
  zst: 'application/zstd',
  bz2: 'application/x-bzip2',
  tar: 'application/x-tar',
  zip: 'application/zip',
  deb: 'application/vnd.debian.binary-package',
  iso: 'application/x-iso9660-image',
  img: 'application/octet-stream',
};

export function contentTypeFor(path: string): string {
  const ext = /\.([A-Za-z0-9]+)$/.exec(path)?.[1]?.toLowerCase();
  return (ext && TYPES[ext]) ?? 'application/octet-stream';
}

/**
 * One `bytes=` range of a file of `size` bytes: undefined for none (or one we ignore, such as
 * several ranges: the whole file is a valid answer), 'invalid' when it cannot be satisfied.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined | 'invalid' {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'invalid';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'invalid';
  return { start, end };
}
