import { silentLogger } from '@builder/protocol';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { RunIO } from '../executors/types.ts';

/**
 * A RunIO for executor tests that records what an executor does with it: console bytes, notes,
 * how often the job started, and for each output dir handed over, its `result.txt`.
 */
export function recordingIO(killGraceMs: number) {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const notes: string[] = [];
  /** `[output dir as the worker sees it, contents of result.txt there ('' when absent)]` */
  const collected: [string, string][] = [];
  /** Why the executor refused to hand over the output dir, if it did. */
  const refused: string[] = [];
  const abort = new AbortController();
  let started = 0;
  const runIO: RunIO = {
    stdout: new PassThrough().on('data', (c: Buffer) => out.push(c)),
    stderr: new PassThrough().on('data', (c: Buffer) => err.push(c)),
    note: (text) => notes.push(text),
    signal: abort.signal,
    killGraceMs,
    started: () => void started++,
    collectOutput: async (dir) => {
      const file = join(dir, 'result.txt');
      collected.push([dir, existsSync(file) ? readFileSync(file, 'utf8') : '']);
    },
    refuseOutput: (reason) => void refused.push(reason),
    log: silentLogger,
  };
  return {
    runIO,
    abort,
    notes,
    collected,
    refused,
    stdout: () => Buffer.concat(out).toString(),
    stderr: () => Buffer.concat(err).toString(),
    started: () => started,
  };
}
