/**
 * The sandbox's user namespace maps its ids 0…COUNT-1 to the host's START…START+COUNT-1, so its
 * root is an unprivileged uid outside. The base rootfs must then be owned by that range (apt and
 * dpkg refuse a root whose files belong to "nobody"): it is chown-shifted once, in place, as
 * unprivileged LXC does, and a stamp in it records the range.
 */
import { chmodSync, lchownSync, lstatSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.ts';

export interface IdRange {
  /** The host uid and gid that are 0 inside. */
  readonly start: number;
  /** How many ids are mapped; at least 65536 so that nobody (65534) exists inside. */
  readonly count: number;
}

/** Inside the base rootfs: `{"start":N,"count":N}` once every file was shifted there. */
export const STAMP = 'etc/builder-idmap.json';
export const MIN_IDS = 65_536;
const MAX_ID = 2 ** 32 - 2; // (uid_t)-1 is "no id"

/** `START:COUNT` or `START` (COUNT 65536), from --id-range. */
export function parseIdRange(text: string): IdRange {
  const m = /^\s*(\d{1,10})(?::(\d{1,10}))?\s*$/.exec(text);
  const start = Number(m?.[1]);
  const count = m?.[2] === undefined ? MIN_IDS : Number(m[2]);
  if (!m || start < MIN_IDS || count < MIN_IDS || start + count - 1 > MAX_ID) {
    throw new UsageError(
      `--id-range must be START[:COUNT] with START >= ${MIN_IDS} and COUNT >= ${MIN_IDS}, e.g. 100000:65536 (got "${text}")`,
    );
  }
  return { start, count };
}

/**
 * root's first range of at least 65536 ids in /etc/subuid that /etc/subgid also grants (the
 * worker runs as root): what `usermod --add-subuids` and LXC use. Undefined when there is none.
 */
export function subidRange(user = 'root', files = { uid: '/etc/subuid', gid: '/etc/subgid' }): IdRange | undefined {
  const ranges = (file: string): IdRange[] => {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return [];
    }
    const found: IdRange[] = [];
    for (const line of text.split('\n')) {
      const [name, start, count] = line.trim().split(':');
      if ((name === user || name === '0') && /^\d+$/.test(start ?? '') && /^\d+$/.test(count ?? '')) {
        found.push({ start: Number(start), count: Number(count) });
      }
    }
    return found;
  };
  const gids = ranges(files.gid);
  return ranges(files.uid).find(
    (u) => u.count >= MIN_IDS && u.start >= MIN_IDS && gids.some((g) => g.start === u.start && g.count >= u.count),
  );
}

export function readStamp(root: string): IdRange | undefined {
  try {
    const v = JSON.parse(readFileSync(join(root, STAMP), 'utf8')) as Partial<IdRange>;
    if (typeof v.start === 'number' && typeof v.count === 'number') return { start: v.start, count: v.count };
  } catch {
    // no stamp: never shifted
  }
  return undefined;
}

/**
 * Make every file of `root` owned inside `range`: an id below COUNT (a file made by debootstrap,
 * or added later from the host) moves to START+id, ids already in the range stay. Idempotent, so
 * an interrupted shift is finished by the next call and a base updated from the host is fixed at
 * the next worker start. A base stamped with another range is refused: moving it under running
 * sandboxes of another worker would break them. Returns how many entries changed.
 */
export function shiftRootfs(root: string, range: IdRange): number {
  const stamped = readStamp(root);
  if (stamped && (stamped.start !== range.start || stamped.count !== range.count)) {
    throw new UsageError(
      `--root ${root} belongs to the id range ${stamped.start}:${stamped.count} (${STAMP}), not ${range.start}:${range.count}: ` +
        'give every worker of one base the same --id-range, or each range its own base (debian/mkroot)',
    );
  }
  const move = (id: number) => (id < range.count ? range.start + id : id);
  let changed = 0;
  const visit = (path: string, dev: number | undefined) => {
    const st = lstatSync(path);
    // one file system only: never into something mounted under the base
    if (dev !== undefined && st.dev !== dev) return;
    const uid = move(st.uid);
    const gid = move(st.gid);
    if (uid !== st.uid || gid !== st.gid) {
      lchownSync(path, uid, gid);
      // chown drops set-user/group-ID bits (and file capabilities, which no_new_privs ignores anyway)
      if (!st.isSymbolicLink() && st.mode & 0o6000) chmodSync(path, st.mode & 0o7777);
      changed++;
    }
    if (st.isDirectory()) for (const entry of readdirSync(path)) visit(join(path, entry), st.dev);
  };
  visit(root, undefined);
  if (!stamped) {
    const tmp = join(root, `${STAMP}.tmp`);
    writeFileSync(tmp, `${JSON.stringify(range)}\n`, { mode: 0o644 });
    lchownSync(tmp, range.start, range.start);
    renameSync(tmp, join(root, STAMP));
  }
  return changed;
}
