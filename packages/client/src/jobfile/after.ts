/** A job file's name and `after:`, as apply sees them. */
export interface AfterEdge {
  file: string;
  name: string;
  after: string | null;
}

/**
 * Check the `after:` of the files being applied against each other and the live jobs (`live`:
 * name → after): a job named by `after:` must exist (live, or among the files) and no chain may
 * come back to where it started. Returns the problems (one line each, naming the file) and the
 * files in an order where a job comes after the job it follows, so the server, which refuses an
 * unknown `after:`, accepts them one by one.
 */
export function orderByAfter<T extends AfterEdge>(
  files: readonly T[],
  live: ReadonlyMap<string, string | null>,
): { problems: string[]; ordered: T[] } {
  const after = new Map(live);
  for (const f of files) after.set(f.name, f.after);
  const problems: string[] = [];
  for (const f of files) {
    if (f.after === null) continue;
    if (!after.has(f.after)) {
      problems.push(`${f.file}: after: no job named "${f.after}" (neither on the server nor in these files)`);
      continue;
    }
    const path = [f.name];
    let at: string | null | undefined = f.after;
    while (at !== null && at !== undefined) {
      path.push(at);
      if (at === f.name) {
        problems.push(`${f.file}: after: ${path.join(' → ')} would be a cycle (each job would wait for itself)`);
        break;
      }
      if (path.indexOf(at) < path.length - 1) break;
      at = after.get(at);
    }
  }
  const byName = new Map(files.map((f) => [f.name, f]));
  const ordered: T[] = [];
  const placed = new Set<string>();
  const place = (f: T, depth: number): void => {
    if (placed.has(f.name) || depth > files.length) return;
    const first = f.after === null ? undefined : byName.get(f.after);
    if (first) place(first, depth + 1);
    placed.add(f.name);
    ordered.push(f);
  };
  for (const f of files) place(f, 0);
  return { problems, ordered };
}
