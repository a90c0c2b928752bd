import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { inputName, parseInputFrom, type InputFile, type InputFrom } from '@builder/protocol';
import { hashFile, type OutgoingFile } from '@builder/protocol/transfer';
import type { Context } from '../cli/context.ts';
import { CliError } from '../errors.ts';
import { ExitCode } from '../exit.ts';
import { sendFiles } from './artifacts.ts';

/** `execute --input FILE… --input-from JOB[/N]:PATH`: what the server is asked to give the runs. */
export interface PreparedInputs {
  files: OutgoingFile[];
  from: InputFrom[];
}

/** Check every argument before anything is sent: files exist, specs parse, names are distinct. */
export async function prepareInputs(files: readonly string[], from: readonly string[]): Promise<PreparedInputs> {
  const out: OutgoingFile[] = [];
  for (const arg of files) {
    const abs = resolve(arg);
    const st = await stat(abs).catch(() => undefined);
    if (!st) throw new CliError(ExitCode.Usage, `--input ${arg}: no such file`);
    if (!st.isFile()) throw new CliError(ExitCode.Usage, `--input ${arg}: not a regular file`);
    out.push({ path: basename(abs), source: abs, ...(await hashFile(abs)) });
  }
  const specs: InputFrom[] = [];
  for (const text of from) {
    const spec = parseInputFrom(text);
    if (!spec) {
      throw new CliError(
        ExitCode.Usage,
        `--input-from ${text}: expected JOB:PATH or JOB/N:PATH (an artifact of JOB's latest success, or of run N)`,
      );
    }
    specs.push(spec);
  }
  const seen = new Map<string, string>();
  const names: [string, string][] = [
    ...out.map((f): [string, string] => [f.path, f.source]),
    ...from.map((t, i): [string, string] => [inputName(specs[i]!.path), t]),
  ];
  for (const [name, what] of names) {
    const other = seen.get(name);
    if (other !== undefined)
      throw new CliError(ExitCode.Usage, `two inputs would be named ${name}: ${other} and ${what}`);
    seen.set(name, what);
  }
  return { files: out, from: specs };
}

/** Send the files the server lacks to `PUT /inputs`; resolves to how `execute` names them. */
export async function sendInputs(ctx: Context, files: readonly OutgoingFile[]): Promise<InputFile[]> {
  if (files.length === 0) return [];
  await sendFiles(ctx, files, {
    path: '/inputs',
    label: 'inputs',
    doing: 'send inputs to',
    refused: 'sending the inputs failed',
  });
  return files.map(({ path, size, sha256 }) => ({ name: path, size, sha256 }));
}
