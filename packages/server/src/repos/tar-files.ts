/**
 * The regular files of an (uncompressed) tar held in memory, by name without a leading `./`:
 * enough to read a package's control file or manifest. GNU long names and pax `path` records are
 * honoured; anything that is not a tar is an error naming the problem.
 */
export function tarFiles(tar: Buffer, want?: (name: string) => boolean): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  let longName: string | undefined;
  while (off + 512 <= tar.length) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    if (!checksumOk(header)) throw new Error(`not a tar archive (bad header checksum at byte ${off})`);
    const size = octal(header.subarray(124, 136));
    const type = String.fromCharCode(header[156] ?? 0);
    const body = tar.subarray(off + 512, off + 512 + size);
    if (body.length < size) throw new Error('tar archive cut short');
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = cString(body);
      continue;
    }
    if (type === 'x') {
      const path = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
      if (path?.[1] !== undefined) longName = path[1];
      continue;
    }
    const prefix = cString(header.subarray(345, 500));
    const raw =
      longName ?? (prefix ? `${prefix}/${cString(header.subarray(0, 100))}` : cString(header.subarray(0, 100)));
    longName = undefined;
    if (type !== '0' && type !== '\0') continue;
    const name = raw.replace(/^\.\//, '').replace(/^\/+/, '');
    if (!want || want(name)) out.set(name, Buffer.from(body));
  }
  if (off < tar.length && out.size === 0 && tar.subarray(off).some((b) => b !== 0) && off + 512 > tar.length) {
    throw new Error('tar archive cut short');
  }
  return out;
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString('utf8');
}

function octal(b: Buffer): number {
  // GNU base-256 for sizes over 8 GiB: never a control file
  if ((b[0] ?? 0) & 0x80) throw new Error('tar member too large');
  const s = cString(b).trim();
  const n = s === '' ? 0 : parseInt(s, 8);
  if (!Number.isFinite(n)) throw new Error('not a tar archive (bad size field)');
  return n;
}

function checksumOk(header: Buffer): boolean {
  const stored = octal(header.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (header[i] ?? 0);
  return sum === stored;
}
