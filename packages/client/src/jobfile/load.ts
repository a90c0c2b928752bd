import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';
import {
  JobSpecSchema,
  normalizeSchedule,
  ProtocolError,
  validateTimezone,
  type JobSpecInput,
} from '@builder/protocol';
import { expandTemplate } from '../template/expand.ts';
import { TemplateError } from '../template/render.ts';
import { JobFileError, parseJobFile } from './parse.ts';
import { durationSeconds, type JobFile } from './schema.ts';

/** Where a spec field comes from in the file, to name the file's key in the server's errors. */
const FILE_KEY: Partial<Record<keyof JobSpecInput, string>> = {
  timeoutSec: 'timeout',
  killGraceSec: 'kill_grace',
  retryBackoffSec: 'retry_backoff',
  alertWebhooks: 'alert_webhooks',
};

export interface LoadOptions {
  /** Where `template:` looks. */
  templatesDir: string;
}

/** Read, check and map one job file onto the wire's spec; any problem is a JobFileError naming file and line. */
export async function loadJobFile(path: string, opts: LoadOptions): Promise<JobSpecInput> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new JobFileError([`${path}: cannot read: ${readError(error)}`]);
  }
  const { file, lineOf } = parseJobFile(text, path);
  const spec = await toSpec(file, path, opts, lineOf);
  const checked = JobSpecSchema.safeParse(spec);
  if (!checked.success) {
    throw new JobFileError(
      checked.error.issues.map((issue) => {
        const [head, ...rest] = issue.path;
        const key = FILE_KEY[head as keyof JobSpecInput] ?? (head === 'scripts' ? 'template' : String(head ?? ''));
        const filePath = head === undefined ? [] : [key, ...rest];
        const field = filePath.length > 0 ? `${filePath.map(String).join('.')}: ` : '';
        return `${path}:${lineOf(filePath)}: ${field}${issue.message}`;
      }),
    );
  }
  checkSchedule(spec, path, lineOf);
  return spec;
}

/** The server's own checks of the schedule and time zone, so that no file is refused halfway through apply. */
function checkSchedule(spec: JobSpecInput, path: string, lineOf: (p: readonly PropertyKey[]) => number): void {
  const tz = spec.timezone ?? 'UTC';
  for (const [key, check] of [
    ['timezone', () => validateTimezone(tz)],
    ['schedule', () => spec.schedule && normalizeSchedule(spec.schedule, tz)],
  ] as const) {
    try {
      check();
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      throw new JobFileError([`${path}:${lineOf([key])}: ${key}: ${error.message}`]);
    }
  }
}

async function toSpec(
  file: JobFile,
  path: string,
  opts: LoadOptions,
  lineOf: (p: readonly PropertyKey[]) => number,
): Promise<JobSpecInput> {
  const platforms = typeof file.platforms === 'string' ? [file.platforms] : file.platforms;
  const name = file.name ?? basename(path, extname(path));
  return {
    name,
    platforms,
    ...(await scripts(file, path, platforms, opts, lineOf)),
    schedule: file.schedule ?? null,
    ...(file.timezone !== undefined && { timezone: file.timezone }),
    ...(file.missed !== undefined && { missed: file.missed }),
    ...(file.timeout !== undefined && { timeoutSec: durationSeconds(file.timeout) }),
    ...(file.kill_grace !== undefined && { killGraceSec: durationSeconds(file.kill_grace) }),
    ...(file.retries !== undefined && { retries: file.retries }),
    ...(file.retry_backoff !== undefined && { retryBackoffSec: durationSeconds(file.retry_backoff) }),
    ...(file.concurrency !== undefined && { concurrency: file.concurrency }),
    ...(file.params !== undefined && {
      params: Object.fromEntries(Object.entries(file.params).map(([k, v]) => [k, String(v)])),
    }),
    ...(file.secrets !== undefined && { secrets: file.secrets }),
    ...(file.alert_webhooks !== undefined && { alertWebhooks: file.alert_webhooks }),
    ...(file.source !== undefined && { source: { git: file.source.git, ref: file.source.ref } }),
    ...(file.after !== undefined && { after: file.after }),
  };
}

async function scripts(
  file: JobFile,
  path: string,
  platforms: string[],
  opts: LoadOptions,
  lineOf: (p: readonly PropertyKey[]) => number,
): Promise<Pick<JobSpecInput, 'script' | 'scripts' | 'template' | 'prepare' | 'prepares'>> {
  const prepare = await prepareStep(file, path, lineOf);
  const own = prepare === undefined ? {} : { prepare };
  if (file.script !== undefined) return { script: file.script, ...own };
  if (file.script_file !== undefined) {
    const scriptPath = resolve(dirname(path), file.script_file);
    try {
      return { script: await readFile(scriptPath, 'utf8'), ...own };
    } catch (error) {
      throw new JobFileError([
        `${path}:${lineOf(['script_file'])}: script_file: cannot read ${scriptPath}: ${readError(error)}`,
      ]);
    }
  }
  const name = file.template ?? '';
  const vars = file.vars ?? {};
  try {
    const { scripts, prepares } = await expandTemplate({ dir: opts.templatesDir, name, platforms, vars });
    // the file's own prepare stands in for the template's
    const prepareParts = prepare !== undefined ? own : Object.keys(prepares).length > 0 ? { prepares } : {};
    return { scripts, template: { name, vars }, ...prepareParts };
  } catch (error) {
    if (error instanceof TemplateError) {
      throw new JobFileError([`${path}:${lineOf(['template'])}: template: ${error.message}`]);
    }
    throw error;
  }
}

/** `prepare:` inline or `prepare_file:` relative to the job file; undefined: no prepare step. */
async function prepareStep(
  file: JobFile,
  path: string,
  lineOf: (p: readonly PropertyKey[]) => number,
): Promise<string | undefined> {
  if (file.prepare_file === undefined) return file.prepare;
  const preparePath = resolve(dirname(path), file.prepare_file);
  try {
    return await readFile(preparePath, 'utf8');
  } catch (error) {
    throw new JobFileError([
      `${path}:${lineOf(['prepare_file'])}: prepare_file: cannot read ${preparePath}: ${readError(error)}`,
    ]);
  }
}

function readError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'is a directory';
  if (code === 'EACCES') return 'permission denied';
  return (error as Error).message;
}
