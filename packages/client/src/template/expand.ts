import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NAME_PATTERN, TEMPLATE_VAR_PATTERN } from '@builder/protocol';
import { parseTemplate, substitute, TemplateError, type Segment } from './render.ts';

/** The `templates/` directory of this repository (same depth from src/template and dist/template). */
export function defaultTemplatesDir(): string {
  return fileURLToPath(new URL('../../../../templates/', import.meta.url));
}

/** Set by the renderer for each platform; a `--var` of that name is refused. */
export const BUILTIN_VARS = ['PLATFORM'] as const;

/**
 * The files that may hold a platform's template, best first: the exact name, then each shorter
 * prefix at a `-` (`debian-12-arm64` → `debian-12`, `debian`), then `default`.
 */
export function candidateFiles(platform: string): string[] {
  const names: string[] = [];
  const parts = platform.split('-');
  for (let n = parts.length; n > 0; n--) {
    const name = parts.slice(0, n).join('-');
    if (name.length > 0 && !names.includes(name)) names.push(name);
  }
  names.push('default');
  return names.map((n) => `${n}.sh`);
}

/**
 * Of `platforms`, those template `name` has a file for (a `default.sh` covers every platform):
 * what `schedule --template T --platform all` builds for.
 */
export async function platformsWithTemplate(
  dir: string,
  name: string,
  platforms: readonly string[],
): Promise<string[]> {
  const present = await regularFiles(await templateDirectory(dir, name));
  return platforms.filter((p) => candidateFiles(p).some((c) => present.has(c)));
}

export interface ExpandOptions {
  dir: string;
  name: string;
  platforms: readonly string[];
  vars: Readonly<Record<string, string>>;
}

export interface Expanded {
  /** The rendered script of each platform. */
  scripts: Record<string, string>;
  /**
   * The rendered prepare step (root, network, before the script) of each platform whose template
   * has one: `PLATFORM.prepare.sh`, looked up like the script (`debian.prepare.sh`, `default.prepare.sh`).
   */
  prepares: Record<string, string>;
  /** The template file each platform's script came from. */
  files: Record<string, string>;
}

/**
 * Render template `name` from `dir` once per platform. Everything a user can get wrong is a
 * TemplateError before anything reaches the server: an unknown template, a platform without a file,
 * a placeholder without a value, a variable no rendered file uses.
 */
export async function expandTemplate({ dir, name, platforms, vars }: ExpandOptions): Promise<Expanded> {
  for (const v of Object.keys(vars)) {
    if (!TEMPLATE_VAR_PATTERN.test(v)) {
      throw new TemplateError(
        'bad-variable',
        `invalid template variable name "${v}": use A-Z, 0-9 and _, not starting with a digit`,
      );
    }
    if ((BUILTIN_VARS as readonly string[]).includes(v)) {
      throw new TemplateError(
        'bad-variable',
        `template variable ${v} is set for each platform: do not pass --var ${v}`,
      );
    }
  }
  const templateDir = await templateDirectory(dir, name);
  const present = await regularFiles(templateDir);
  const parsed = new Map<string, Segment[]>();
  const used = new Set<string>();
  const result: Expanded = { scripts: {}, prepares: {}, files: {} };
  const render = async (path: string, platform: string): Promise<string> => {
    let segments = parsed.get(path);
    if (!segments) {
      segments = parseTemplate(await readText(path), path);
      parsed.set(path, segments);
    }
    const rendered = substitute(segments, { ...vars, PLATFORM: platform });
    const missing = rendered.missing[0];
    if (missing) {
      throw new TemplateError(
        'missing-variable',
        `template variable ${missing.name} is not set: ${path}:${missing.line} uses it (pass --var ${missing.name}=VALUE)`,
      );
    }
    if (rendered.text.trim().length === 0) throw new TemplateError('syntax', `template file ${path} is empty`);
    for (const v of rendered.used) used.add(v);
    return rendered.text;
  };
  for (const platform of platforms) {
    const candidates = candidateFiles(platform);
    const file = candidates.find((c) => present.has(c));
    if (file === undefined) {
      throw new TemplateError(
        'no-file',
        `template ${name} has no file for platform ${platform} (looked for ${candidates.join(', ')} in ${templateDir})`,
      );
    }
    const path = join(templateDir, file);
    result.scripts[platform] = await render(path, platform);
    const prepare = candidates.map((c) => c.replace(/\.sh$/, '.prepare.sh')).find((c) => present.has(c));
    if (prepare !== undefined) result.prepares[platform] = await render(join(templateDir, prepare), platform);
    result.files[platform] = path;
  }
  const unused = Object.keys(vars).find((v) => !used.has(v));
  if (unused !== undefined) {
    const files = [...new Set(Object.values(result.files))].join(', ');
    throw new TemplateError('unknown-variable', `template variable ${unused} is not used by ${files}`);
  }
  return result;
}

async function templateDirectory(dir: string, name: string): Promise<string> {
  if (!NAME_PATTERN.test(name)) {
    throw new TemplateError('no-template', `invalid template name "${name}": use letters, digits, ".", "_" and "-"`);
  }
  const path = join(dir, name);
  const isDir = await stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (isDir) return path;
  const available = await readdir(dir, { withFileTypes: true }).then(
    (entries) => entries.filter((e) => e.isDirectory()).map((e) => e.name),
    () => undefined,
  );
  if (available === undefined) throw new TemplateError('no-template', `no templates directory ${dir}`);
  throw new TemplateError(
    'no-template',
    `no template ${name} in ${dir} (there: ${available.length === 0 ? 'none' : available.sort().join(', ')})`,
  );
}

/** Names of the regular files in `dir` (symlinks followed, so `ubuntu.sh -> debian.sh` works). */
async function regularFiles(dir: string): Promise<Set<string>> {
  const names = await readdir(dir);
  const files = new Set<string>();
  for (const n of names) {
    const isFile = await stat(join(dir, n)).then(
      (s) => s.isFile(),
      () => false,
    );
    if (isFile) files.add(n);
  }
  return files;
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new TemplateError('unreadable', `cannot read template file ${path}: ${(error as Error).message}`);
  }
}
