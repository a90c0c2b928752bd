import { compressSync as xz } from '@napi-rs/lzma/xz';
import { decompress, compressionOf } from './decompress.ts';
import { NotAPackageError } from './deb.ts';
import { tarFiles } from './tar-files.ts';
import { tarOf } from './tar-write.ts';

/** A .pkg's compact manifest and what a catalogue needs of it. */
export interface PkgManifest {
  name: string;
  version: string;
  /** `FreeBSD:14:amd64`: the catalogue a package belongs to (pkg's `${ABI}`). */
  abi: string;
  /** The compact manifest as JSON, without file lists and scripts. */
  manifest: Record<string, unknown>;
}

/** A .pkg read whole into memory: past this it is refused with a note. */
export const MAX_PKG_BYTES = 512 << 20;

/** Keys of a full +MANIFEST that a catalogue line (a compact manifest) does not carry. */
const NOT_COMPACT = ['files', 'directories', 'scripts', 'lua_scripts', 'config', 'messages'];

/**
 * Read the manifest of a FreeBSD package: a tar (compressed with zstd, xz or gzip) whose first
 * members are `+COMPACT_MANIFEST` and `+MANIFEST`, written by `pkg create` as JSON.
 */
export function readPkgManifest(bytes: Buffer): PkgManifest {
  if (compressionOf(bytes) === 'none' && bytes.subarray(257, 262).toString('latin1') !== 'ustar') {
    throw new NotAPackageError('not a FreeBSD package: neither a tar nor a zstd, xz or gzip compressed one');
  }
  let files: Map<string, Buffer>;
  try {
    files = tarFiles(decompress(bytes), (n) => n === '+COMPACT_MANIFEST' || n === '+MANIFEST');
  } catch (err) {
    throw new NotAPackageError(`not a FreeBSD package: ${(err as Error).message}`);
  }
  const raw = files.get('+COMPACT_MANIFEST') ?? files.get('+MANIFEST');
  if (!raw) throw new NotAPackageError('not a FreeBSD package: no +COMPACT_MANIFEST or +MANIFEST');
  let manifest: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    manifest = parsed as Record<string, unknown>;
  } catch {
    throw new NotAPackageError('the package manifest is not JSON (UCL manifests are not read)');
  }
  for (const k of NOT_COMPACT) delete manifest[k];
  const str = (k: string) => (typeof manifest[k] === 'string' ? (manifest[k] as string) : undefined);
  const name = str('name');
  const version = str('version');
  const abi = str('abi') ?? str('arch');
  const missing = [!name && 'name', !version && 'version', !abi && 'abi', !str('origin') && 'origin'].filter(Boolean);
  if (missing.length > 0 || !name || !version || !abi) {
    throw new NotAPackageError(`the package manifest lacks ${missing.join(', ')}`);
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9:_.*-]*$/.test(abi)) throw new NotAPackageError(`invalid ABI ${JSON.stringify(abi)}`);
  if (/[/\s]/.test(name) || /[/\s]/.test(version)) throw new NotAPackageError('invalid package name or version');
  return { name, version, abi, manifest };
}

/** One package of a catalogue: its manifest and where the file is under the ABI's root. */
export interface CatalogueEntry {
  manifest: Record<string, unknown>;
  /** `All/name-version.pkg` */
  path: string;
  sha256: string;
  size: number;
}

export const PKG_META_CONF = `version = 2;
packing_format = "txz";
manifests = "packagesite.yaml";
manifests_archive = "packagesite";
data = "data";
data_archive = "data";
filesite = "filesite.yaml";
filesite_archive = "filesite";
`;

/**
 * The files of one ABI's catalogue, as `pkg repo` lays them out: `meta.conf` (and `meta`),
 * `packagesite.pkg` (a tar.xz of `signature` and `packagesite.yaml`, one compact manifest per line
 * with `sum`, `pkgsize`, `path` and `repopath`) and `data.pkg` (the same packages as one JSON
 * document, which pkg 2 reads first), each archive signed with `sign`.
 */
export function pkgCatalogue(
  entries: readonly CatalogueEntry[],
  sign: (bytes: Buffer) => Buffer,
  mtime: number,
): Map<string, Buffer> {
  const lines = entries.map((e) => ({
    ...e.manifest,
    sum: e.sha256,
    pkgsize: e.size,
    path: e.path,
    repopath: e.path,
  }));
  const yaml = Buffer.from(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  const data = Buffer.from(JSON.stringify({ groups: [], expired_packages: [], packages: lines }));
  const archive = (member: string, body: Buffer) =>
    Buffer.from(
      xz(
        tarOf(
          [
            { name: 'signature', data: sign(body) },
            { name: member, data: body },
          ],
          mtime,
        ),
      ),
    );
  return new Map([
    ['meta.conf', Buffer.from(PKG_META_CONF)],
    ['meta', Buffer.from(PKG_META_CONF)],
    ['packagesite.pkg', archive('packagesite.yaml', yaml)],
    ['data.pkg', archive('data', data)],
  ]);
}
