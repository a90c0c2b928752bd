import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { syncDir } from '../artifacts/local-blobs.ts';

/** SHA-256 (hex) and length of a file, read once. */
export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * Copy `src` to `dst` (which must not exist), fsynced, hashing what was read on the way; with
 * `limit`, only the first `limit` bytes. Resolves to the hash and length of what was written.
 */
export async function copyFileHashed(
  src: string,
  dst: string,
  limit?: number,
): Promise<{ sha256: string; size: number }> {
  await mkdir(dirname(dst), { recursive: true });
  const hash = createHash('sha256');
  let size = 0;
  const out = await open(dst, 'wx', 0o600);
  try {
    if (limit !== 0) {
      for await (const chunk of createReadStream(src, limit === undefined ? {} : { end: limit - 1 })) {
        const buf = chunk as Buffer;
        hash.update(buf);
        await out.write(buf, 0, buf.length);
        size += buf.length;
      }
    }
    await out.sync();
  } finally {
    await out.close();
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * Put `src` at `dst` as a hard link when both are on one file system and `mayLink` (blobs never change in
 * place: a new version is a new file), else as a copy; check it holds `sha256` at `size` either
 * way. Resolves to how it was placed, or 'damaged' (and nothing placed) when the bytes differ.
 */
export async function placeVerified(
  src: string,
  dst: string,
  sha256: string,
  size: number,
  mayLink = true,
): Promise<'linked' | 'copied' | 'damaged'> {
  await mkdir(dirname(dst), { recursive: true });
  let how: 'linked' | 'copied' = 'copied';
  let got;
  if (mayLink) {
    try {
      await link(src, dst);
      how = 'linked';
      got = await hashFile(dst);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw err;
    }
  }
  got ??= await copyFileHashed(src, dst);
  if (got.sha256 !== sha256 || got.size !== size) {
    await unlink(dst);
    return 'damaged';
  }
  return how;
}

/** fsync every directory under `root` (and root): the entries made in them survive a crash. */
export async function syncTree(root: string): Promise<void> {
  for (const e of await readdir(root, { withFileTypes: true })) {
    if (e.isDirectory()) await syncTree(join(root, e.name));
  }
  await syncDir(root);
}
