import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { ARTIFACT_LIMITS, artifactPathProblem } from '../artifacts.ts';
import { hashFile, type OutgoingFile } from './send.ts';

/** The output dir holds something that cannot be an artifact; the run reports this message. */
export class OutputRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputRefused';
  }
}

/**
 * Every regular file under `dir`, hashed, with its `/`-separated path relative to `dir`. The job
 * controls this directory, so links are never followed out of it: a symbolic link to a file
 * inside becomes a copy of that file, one pointing outside, a device, a FIFO or a socket refuses
 * the whole set (nothing is sent). Links to directories are skipped with a note (they could loop).
 */
export async function scanOutputDir(dir: string): Promise<{ files: OutgoingFile[]; notes: string[] }> {
  const root = await realpath(dir);
  const files: OutgoingFile[] = [];
  const notes: string[] = [];
  const inside = (p: string) => p === root || p.startsWith(root + sep);

  async function add(path: string, source: string): Promise<void> {
    const problem = artifactPathProblem(path);
    if (problem) throw new OutputRefused(`${JSON.stringify(path)}: ${problem}`);
    if (files.length >= ARTIFACT_LIMITS.maxFiles) {
      throw new OutputRefused(`more than ${ARTIFACT_LIMITS.maxFiles} files in the output dir`);
    }
    files.push({ path, source, ...(await hashFile(source)) });
  }

  async function walk(abs: string): Promise<void> {
    const names = (await readdir(abs)).sort();
    for (const name of names) {
      const full = join(abs, name);
      const path = relative(root, full).split(sep).join('/');
      const st = await lstat(full);
      if (st.isDirectory()) await walk(full);
      else if (st.isFile()) await add(path, full);
      else if (st.isSymbolicLink()) {
        let target: string;
        try {
          target = await realpath(full);
        } catch {
          throw new OutputRefused(`${path} is a symbolic link that points nowhere`);
        }
        if (!inside(target)) throw new OutputRefused(`${path} is a symbolic link pointing outside the output dir`);
        const t = await stat(target);
        if (t.isFile()) await add(path, target);
        else if (t.isDirectory()) notes.push(`${path} is a link to a directory: skipped`);
        else throw new OutputRefused(`${path} links to a ${kind(t)}: only regular files can be artifacts`);
      } else {
        throw new OutputRefused(`${path} is a ${kind(st)}: only regular files can be artifacts`);
      }
    }
  }

  await walk(root);
  return { files, notes };
}

function kind(st: { isCharacterDevice(): boolean; isBlockDevice(): boolean; isFIFO(): boolean; isSocket(): boolean }) {
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  return 'special file';
}
