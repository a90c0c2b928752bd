import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { JobFileSchema, type JobFile } from './schema.ts';

/** A job file that cannot be used; each problem is `FILE:LINE: FIELD: why`. */
export class JobFileError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'JobFileError';
    this.problems = problems;
  }
}

/** A parsed file, with a way to name the line of any field for errors found later (the server's rules). */
export interface ParsedJobFile {
  file: JobFile;
  lineOf(path: readonly PropertyKey[]): number;
}

/** Parse and check a job file's text; `file` names it in errors. */
export function parseJobFile(text: string, file: string): ParsedJobFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new JobFileError(
      doc.errors.map((e) => `${file}:${lines.linePos(e.pos[0]).line}: ${e.message.split('\n')[0] ?? ''}`),
    );
  }
  const lineOf = (path: readonly PropertyKey[]): number => lineIn(doc, lines, path);
  if (!isMap(doc.contents)) throw new JobFileError([`${file}:1: a job file is a mapping of keys such as platforms:`]);
  const result = JobFileSchema.safeParse(doc.toJS());
  if (!result.success) {
    const problems = result.error.issues.flatMap((i) => describeIssue(i, file, lineOf).split('\n'));
    throw new JobFileError(problems.sort((a, b) => lineNumber(a, file) - lineNumber(b, file)));
  }
  return { file: result.data, lineOf };
}

function describeIssue(issue: z.core.$ZodIssue, file: string, lineOf: (p: readonly PropertyKey[]) => number): string {
  if (issue.code === 'invalid_union') {
    // the branch that got furthest (a list with one bad item) says more than "invalid input"
    const branches = issue.errors.map((errs) => errs.map((e) => ({ ...e, path: [...issue.path, ...e.path] })));
    const deepest = branches.sort((a, b) => depth(b) - depth(a))[0];
    if (deepest !== undefined && depth(deepest) > issue.path.length) {
      return deepest.map((i) => describeIssue(i as z.core.$ZodIssue, file, lineOf)).join('\n');
    }
  }
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${file}:${lineOf([...issue.path, k])}: ${k}: unknown key`).join('\n');
  }
  const field = issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : '';
  return `${file}:${lineOf(issue.path)}: ${field}${issue.message}`;
}

function lineNumber(problem: string, file: string): number {
  return Number(/^(\d+):/.exec(problem.slice(file.length + 1))?.[1] ?? 0);
}

function depth(issues: readonly { path: readonly PropertyKey[] }[]): number {
  return Math.max(0, ...issues.map((i) => i.path.length));
}

/** The line of the deepest key or item along `path` that exists (a missing field: its parent's line). */
function lineIn(doc: Document, lines: LineCounter, path: readonly PropertyKey[]): number {
  let node: unknown = doc.contents;
  let line = 1;
  for (const key of path) {
    let at: Node | null | undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
      if (pair === undefined) break;
      at = isNode(pair.key) ? pair.key : undefined;
      node = pair.value;
    } else if (isSeq(node)) {
      const item = node.items[Number(key)];
      at = isNode(item) ? item : undefined;
      node = item;
    } else break;
    if (at?.range) line = lines.linePos(at.range[0]).line;
  }
  return line;
}
