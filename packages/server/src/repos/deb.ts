import { compressionOf, decompress } from './decompress.ts';
import { tarFiles } from './tar-files.ts';

/** A .deb's control paragraph, as its control file has it, and the fields an index needs. */
export interface DebControl {
  name: string;
  version: string;
  arch: string;
  /** The control file's paragraph, trimmed, continuation lines as they were. */
  paragraph: string;
}

/** Why a file is not a Debian binary package, said so that a packager knows what to fix. */
export class NotAPackageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotAPackageError';
  }
}

const AR_MAGIC = '!<arch>\n';
/** More than any control tarball has any business being. */
const MAX_CONTROL_BYTES = 64 << 20;

/**
 * Read the control file of a .deb from its bytes as they stream: an ar archive of `debian-binary`
 * (2.x), `control.tar[.gz|.xz|.zst]`, then the data tarball, which is never read.
 */
export async function readDebControl(chunks: AsyncIterable<Buffer>): Promise<DebControl> {
  let buf = Buffer.alloc(0);
  let off = 8;
  let sawVersion = false;
  for await (const chunk of chunks) {
    buf = Buffer.concat([buf, chunk]);
    if (buf.length >= 8 && buf.subarray(0, 8).toString('latin1') !== AR_MAGIC) {
      throw new NotAPackageError('not a Debian package: no ar archive signature (!<arch>)');
    }
    // members as far as the bytes so far reach
    while (buf.length >= off + 60) {
      const header = buf.subarray(off, off + 60);
      const name = header.subarray(0, 16).toString('latin1').trim().replace(/\/$/, '');
      const size = Number(header.subarray(48, 58).toString('latin1').trim());
      if (!Number.isSafeInteger(size) || size < 0 || header.subarray(58, 60).toString('latin1') !== '`\n') {
        throw new NotAPackageError(`not a Debian package: damaged ar member header at byte ${off}`);
      }
      if (name.startsWith('control.tar') && size > MAX_CONTROL_BYTES) {
        throw new NotAPackageError(`${name} is ${size} bytes: too large to be a control archive`);
      }
      if (buf.length < off + 60 + size) break;
      const body = buf.subarray(off + 60, off + 60 + size);
      if (!sawVersion) {
        if (name !== 'debian-binary')
          throw new NotAPackageError(`not a Debian package: first member is ${name}, not debian-binary`);
        if (!/^2\.\d+\n/.test(body.toString('latin1'))) {
          throw new NotAPackageError(
            `unsupported Debian package format ${JSON.stringify(body.toString('latin1').trim())}`,
          );
        }
        sawVersion = true;
      } else if (name.startsWith('control.tar')) {
        return parseControlTar(name, Buffer.from(body));
      } else if (name.startsWith('data.tar')) {
        throw new NotAPackageError('not a Debian package: data.tar comes before any control.tar');
      }
      off += 60 + size + (size % 2);
    }
  }
  if (buf.length === 0) throw new NotAPackageError('not a Debian package: the file is empty');
  if (buf.length < 8 && !AR_MAGIC.startsWith(buf.toString('latin1'))) {
    throw new NotAPackageError('not a Debian package: no ar archive signature (!<arch>)');
  }
  throw new NotAPackageError(
    sawVersion ? 'not a Debian package: no control.tar member' : 'not a Debian package: cut short',
  );
}

function parseControlTar(member: string, body: Buffer): DebControl {
  const ext = member.slice('control.tar'.length);
  if (!['', '.gz', '.xz', '.zst'].includes(ext)) {
    throw new NotAPackageError(`${member}: compression not supported (gz, xz, zst or none)`);
  }
  const expected = ({ '': 'none', '.gz': 'gz', '.xz': 'xz', '.zst': 'zst' } as const)[
    ext as '' | '.gz' | '.xz' | '.zst'
  ];
  if (expected !== 'none' && compressionOf(body) !== expected) {
    throw new NotAPackageError(`${member} cannot be read: it is not ${expected} data`);
  }
  let control: Buffer | undefined;
  try {
    control = tarFiles(decompress(body), (n) => n === 'control').get('control');
  } catch (err) {
    throw new NotAPackageError(`${member} cannot be read: ${(err as Error).message}`);
  }
  if (!control) throw new NotAPackageError(`${member} has no control file`);
  return parseControl(control.toString('utf8'));
}

/** The first paragraph of a control file, checked for the fields every binary package has. */
export function parseControl(text: string): DebControl {
  const paragraph =
    text
      .replace(/\r\n/g, '\n')
      .trim()
      .split(/\n\s*\n/)[0] ?? '';
  const fields = controlFields(paragraph);
  const get = (f: string) => fields.get(f.toLowerCase())?.trim();
  const name = get('Package');
  const version = get('Version');
  const arch = get('Architecture');
  const missing = [!name && 'Package', !version && 'Version', !arch && 'Architecture'].filter(Boolean);
  if (missing.length > 0 || !name || !version || !arch) {
    throw new NotAPackageError(`the control file lacks ${missing.join(', ')}`);
  }
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(name)) throw new NotAPackageError(`invalid package name ${JSON.stringify(name)}`);
  if (!/^(\d+:)?[0-9][A-Za-z0-9.+~:-]*$/.test(version)) {
    throw new NotAPackageError(`invalid version ${JSON.stringify(version)} of package ${name}`);
  }
  if (!/^[a-z0-9-]+$/.test(arch)) throw new NotAPackageError(`invalid architecture ${JSON.stringify(arch)}`);
  return { name, version, arch, paragraph };
}

/** Field name (lower case) → value, continuation lines joined with newlines as written. */
export function controlFields(paragraph: string): Map<string, string> {
  const fields = new Map<string, string>();
  let current: string | undefined;
  for (const line of paragraph.split('\n')) {
    if (/^[ \t]/.test(line) && current !== undefined) {
      fields.set(current, `${fields.get(current) ?? ''}\n${line}`);
      continue;
    }
    const m = /^([!-9;-~][!-9;-~]*):[ \t]*(.*)$/.exec(line);
    if (!m) throw new NotAPackageError(`the control file has a malformed line: ${JSON.stringify(line.slice(0, 80))}`);
    current = (m[1] ?? '').toLowerCase();
    fields.set(current, m[2] ?? '');
  }
  return fields;
}
