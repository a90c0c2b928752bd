import { constants, lstatSync, type Stats } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LIMITS, type RunSummary } from '@builder/protocol';
import { describeError } from './errors.ts';

/**
 * The file `$BUILDER_SUMMARY` names, inside the output dir so every executor already maps it
 * (host, chroot, jail alike), and taken out before the artifacts are sent: it is the run page's
 * text, not a file of the build.
 */
export const SUMMARY_FILE = '.builder-summary.md';

/**
 * Read and remove the job's summary from its output dir. A summary over the limit is cut on a
 * character boundary with `truncated` set; a symlink or anything but a regular file is refused
 * (the job could point it anywhere on the worker). Undefined: the job wrote none (or an empty one).
 */
export async function takeSummary(outputDir: string, note: (text: string) => void): Promise<RunSummary | undefined> {
  const path = join(outputDir, SUMMARY_FILE);
  // synchronous: most jobs write none, and a missing file must cost no thread-pool round trip
  let st: Stats | undefined;
  try {
    st = lstatSync(path, { throwIfNoEntry: false });
  } catch {
    st = undefined;
  }
  if (!st) return undefined;
  try {
    if (!st.isFile()) {
      note(`[builder] $BUILDER_SUMMARY is not a regular file: no summary shown`);
      return undefined;
    }
    const max = LIMITS.maxSummaryBytes;
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    let bytes: Buffer;
    try {
      const buf = Buffer.alloc(max + 1);
      const { bytesRead } = await fh.read(buf, 0, max + 1, 0);
      bytes = buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
    const truncated = bytes.length > max;
    if (truncated) {
      let end = max;
      // back to the start of a UTF-8 character, so the cut never splits one
      while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
      bytes = bytes.subarray(0, end);
      note(`[builder] $BUILDER_SUMMARY is over ${max / 1024} KiB: the run page shows its beginning`);
    }
    const markdown = bytes.toString('utf8');
    if (markdown.trim() === '') return undefined;
    // the zod limit counts UTF-16 units, never more than the bytes kept
    return { markdown, truncated };
  } catch (err) {
    note(`[builder] cannot read $BUILDER_SUMMARY: ${describeError(err)}`);
    return undefined;
  } finally {
    await unlink(path).catch(() => undefined);
  }
}
