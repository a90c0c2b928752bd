import { TEMPLATE_VAR_PATTERN } from '@builder/protocol';

/** Why a template could not be rendered; `message` is one line that names the variable and the file. */
export type TemplateErrorKind =
  'syntax' | 'missing-variable' | 'unknown-variable' | 'bad-variable' | 'no-template' | 'no-file' | 'unreadable';

export class TemplateError extends Error {
  readonly kind: TemplateErrorKind;
  constructor(kind: TemplateErrorKind, message: string) {
    super(message);
    this.name = 'TemplateError';
    this.kind = kind;
  }
}

/** A template as literal text and `{{NAME}}` placeholders, in order. */
export type Segment = { text: string } | { name: string; line: number };

// `{{`, optional blanks, a candidate name, optional blanks, `}}`; the name is checked separately so
// that `{{ repo }}` gets "not a variable name" rather than a vague syntax error
const PLACEHOLDER = /\{\{[ \t]*([^{}\s]*)[ \t]*\}\}/y;

/**
 * Split a template into text and placeholders. `\{{` is a literal `{{`; any other `{{` must open a
 * placeholder, so a typo is an error here rather than a broken script on the worker.
 */
export function parseTemplate(source: string, file: string): Segment[] {
  const segments: Segment[] = [];
  let text = '';
  let from = 0;
  for (let at = source.indexOf('{{'); at !== -1; at = source.indexOf('{{', from)) {
    if (at > 0 && source[at - 1] === '\\') {
      text += `${source.slice(from, at - 1)}{{`;
      from = at + 2;
      continue;
    }
    const line = lineOf(source, at);
    PLACEHOLDER.lastIndex = at;
    const m = PLACEHOLDER.exec(source);
    if (!m) {
      throw new TemplateError(
        'syntax',
        `${file}:${line}: "{{" does not open a placeholder {{NAME}} (write \\{{ for a literal "{{")`,
      );
    }
    const name = m[1] ?? '';
    if (!TEMPLATE_VAR_PATTERN.test(name)) {
      throw new TemplateError(
        'syntax',
        `${file}:${line}: "${m[0]}" is not a placeholder: variable names are A-Z, 0-9 and _, not starting with a digit (write \\{{ for a literal "{{")`,
      );
    }
    text += source.slice(from, at);
    if (text.length > 0) segments.push({ text });
    text = '';
    segments.push({ name, line });
    from = at + m[0].length;
  }
  text += source.slice(from);
  if (text.length > 0) segments.push({ text });
  return segments;
}

/** Substitute every placeholder; variables without a value come back in `missing` (first use each). */
export function substitute(
  segments: readonly Segment[],
  vars: Readonly<Record<string, string>>,
): { text: string; used: Set<string>; missing: { name: string; line: number }[] } {
  let text = '';
  const used = new Set<string>();
  const missing: { name: string; line: number }[] = [];
  for (const s of segments) {
    if ('text' in s) {
      text += s.text;
      continue;
    }
    used.add(s.name);
    const value = Object.hasOwn(vars, s.name) ? vars[s.name] : undefined;
    if (value === undefined) {
      if (!missing.some((m) => m.name === s.name)) missing.push({ name: s.name, line: s.line });
    } else text += value;
  }
  return { text, used, missing };
}

function lineOf(source: string, index: number): number {
  let line = 1;
  for (let i = source.indexOf('\n'); i !== -1 && i < index; i = source.indexOf('\n', i + 1)) line++;
  return line;
}
