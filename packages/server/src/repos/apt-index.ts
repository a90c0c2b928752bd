import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { compressSync as xz } from '@napi-rs/lzma/xz';

/** A .deb as an index lists it. */
export interface DebEntry {
  name: string;
  version: string;
  arch: string;
  /** The control file's paragraph. */
  paragraph: string;
  filename: string;
  sha256: string;
  size: number;
}

/** Fields the archive states itself, never taken from a control file. */
const ARCHIVE_FIELDS = new Set(['filename', 'size', 'md5sum', 'sha1', 'sha256', 'sha512', 'description-md5']);

/** `pool/main/h/hello/hello_1.0-1_amd64.deb` (the epoch is not part of a file name). */
export function poolPath(component: string, name: string, version: string, arch: string): string {
  const prefix = name.startsWith('lib') && name.length > 3 ? name.slice(0, 4) : name.slice(0, 1);
  return `pool/${component}/${prefix}/${name}/${name}_${version.replace(/^\d+:/, '')}_${arch}.deb`;
}

/**
 * One Packages paragraph: the control file's fields as written (continuation lines kept), the
 * archive's own Filename, Size and SHA256 added, Description last as dpkg-scanpackages puts it.
 */
export function packagesParagraph(e: DebEntry): string {
  const fields: { name: string; lines: string[] }[] = [];
  for (const line of e.paragraph.split('\n')) {
    const name = /^([^\s:]+):/.exec(line)?.[1]?.toLowerCase();
    if (name !== undefined) fields.push({ name, lines: [line] });
    else fields.at(-1)?.lines.push(line);
  }
  const kept = fields.filter((f) => !ARCHIVE_FIELDS.has(f.name));
  const description = kept.filter((f) => f.name === 'description');
  return [
    ...kept.filter((f) => f.name !== 'description').flatMap((f) => f.lines),
    `Filename: ${e.filename}`,
    `Size: ${e.size}`,
    `SHA256: ${e.sha256}`,
    ...description.flatMap((f) => f.lines),
  ].join('\n');
}

export interface AptRepoSpec {
  name: string;
  suite: string;
  component: string;
}

/**
 * The unsigned files of an apt repository's `dists/SUITE/`: one `Packages` (+ `.gz`, `.xz`) per
 * architecture (`all` packages in every one) and the `Release` that hashes them, with
 * `Acquire-By-Hash: yes` so a client fetches each index by its SHA-256.
 */
export function aptIndices(repo: AptRepoSpec, debs: readonly DebEntry[], now: Date): Map<string, Buffer> {
  const archs = [...new Set(debs.map((d) => d.arch).filter((a) => a !== 'all'))].sort();
  if (archs.length === 0) archs.push('amd64');
  const files = new Map<string, Buffer>();
  for (const arch of archs) {
    const list = debs
      .filter((d) => d.arch === arch || d.arch === 'all')
      .sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
    const packages = Buffer.from(list.map((d) => `${packagesParagraph(d)}\n\n`).join(''));
    const dir = `${repo.component}/binary-${arch}`;
    files.set(`${dir}/Packages`, packages);
    files.set(`${dir}/Packages.gz`, gzipSync(packages, { level: 9 }));
    files.set(`${dir}/Packages.xz`, Buffer.from(xz(packages)));
  }
  const sums = [...files].map(([path, bytes]) => ({ path, size: bytes.length, bytes }));
  const hashes = (algo: 'md5' | 'sha256') =>
    sums.map((s) => ` ${createHash(algo).update(s.bytes).digest('hex')} ${String(s.size).padStart(10)} ${s.path}`);
  const release = [
    `Origin: builder`,
    `Label: ${repo.name}`,
    `Suite: ${repo.suite}`,
    `Codename: ${repo.suite}`,
    `Date: ${now.toUTCString().replace(/GMT$/, 'UTC')}`,
    `Architectures: ${archs.join(' ')}`,
    `Components: ${repo.component}`,
    `Description: packages built by builder (repository ${repo.name})`,
    `Acquire-By-Hash: yes`,
    `MD5Sum:`,
    ...hashes('md5'),
    `SHA256:`,
    ...hashes('sha256'),
    '',
  ].join('\n');
  const out = new Map<string, Buffer>();
  for (const [path, bytes] of files) out.set(`dists/${repo.suite}/${path}`, bytes);
  out.set(`dists/${repo.suite}/Release`, Buffer.from(release));
  return out;
}
