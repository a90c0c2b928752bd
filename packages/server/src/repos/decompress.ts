import { gunzipSync } from 'node:zlib';
import { decompressSync as unxz } from '@napi-rs/lzma/xz';
import { decompress as unzstd } from 'fzstd';

/** The compressions a package's control tarball or a .pkg may use, told by magic bytes. */
export type Compression = 'gz' | 'xz' | 'zst' | 'none';

export function compressionOf(b: Buffer): Compression {
  if (b[0] === 0x1f && b[1] === 0x8b) return 'gz';
  if (b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (b.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zst';
  return 'none';
}

/** Decompress gzip, xz or zstd (told by magic bytes, whatever the name says); anything else as is. */
export function decompress(b: Buffer): Buffer {
  switch (compressionOf(b)) {
    case 'gz':
      return gunzipSync(b);
    case 'xz':
      return Buffer.from(unxz(b));
    case 'zst':
      return Buffer.from(unzstd(b));
    case 'none':
      return b;
  }
}
