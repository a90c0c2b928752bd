import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogStore, WRITEBACK_BYTES } from './log-store.ts';

/** Descriptors of this process open on `path`. */
function openOn(path: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) n++;
    } catch {
      // closed meanwhile (the readdir's own descriptor)
    }
  }
  return n;
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
  if (!ok()) throw new Error(`never: ${what}`);
}

describe('console files written back in the background', () => {
  let dir: string;
  let logs: LogStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'builder-logstore-'));
    logs = new LogStore(dir);
  });
  afterEach(() => {
    logs.closeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every byte in order across background syncs, batch syncs, a close during one and a reopen', async () => {
    const runId = 'r1';
    const chunks: Buffer[] = [];
    const chunk = (i: number) => Buffer.alloc(64 * 1024 + (i % 7), String.fromCharCode(97 + (i % 26)));
    // three writebacks' worth, with a batch sync every few chunks as the intake does
    for (let i = 0; i < (3 * WRITEBACK_BYTES) / (64 * 1024); i++) {
      chunks.push(chunk(i));
      logs.append(runId, chunks.at(-1)!);
      if (i % 5 === 4) logs.syncDirty();
    }
    logs.syncDirty();
    const total = chunks.reduce((n, c) => n + c.length, 0);
    expect(logs.written(runId)).toBe(total);

    // exactly the threshold: a background sync starts, and the run ends before it is over
    const last = Buffer.alloc(WRITEBACK_BYTES, 'z');
    chunks.push(last);
    logs.append(runId, last);
    logs.close(runId);
    expect(logs.isOpen(runId)).toBe(false);
    // the descriptor is closed once that sync is over, not left behind
    await until('the console file closed', () => openOn(logs.path(runId)) === 0);
    expect(readFileSync(logs.path(runId)).equals(Buffer.concat(chunks))).toBe(true);

    // opened again (e.g. the server's own closing line): appends go on at the end
    expect(logs.append(runId, 'tail\n')).toBe(total + WRITEBACK_BYTES + 5);
    logs.close(runId);
    expect(readFileSync(logs.path(runId)).subarray(-5).toString()).toBe('tail\n');
  });
});
