import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../log.ts';
import { ConsoleCompressor } from './compress.ts';
import { BLOCK, compressConsole } from './gz-blocks.ts';
import { LogStore } from './log-store.ts';

/** A build log as compilers and test runners print it: repetitive, with numbers and colours. */
function buildLog(lines: number): Buffer {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const file = `src/module${i % 97}/part${i % 13}.c`;
    if (i % 50 === 0) out.push(`\x1b[1;34m==>\x1b[0m Building target lib${i % 17} (${i}/${lines})`);
    out.push(`gcc -O2 -Wall -fPIC -Iinclude -c ${file} -o build/${file.replace('.c', '.o')}`);
    if (i % 7 === 0) out.push(`${file}:${(i * 31) % 900}:5: \x1b[35mwarning:\x1b[0m unused variable ‘tmp${i % 5}’`);
    if (i % 11 === 0) out.push(`test ${i} ... ok (${(i * 7) % 1000} ms)`);
  }
  return Buffer.from(out.join('\n') + '\n', 'utf8');
}

describe('compressed consoles', () => {
  let dir: string;
  let logs: LogStore;
  let finished: Set<string>;
  const compressor = () => new ConsoleCompressor({ logs, logger: silentLogger, finished: (id) => finished.has(id) });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'builder-compress-'));
    logs = new LogStore(dir);
    finished = new Set();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Every read a reader makes: the size, the whole, ranges across block edges, past the end. */
  const views = (runId: string) => {
    const size = logs.size(runId);
    const ranges: [number, number][] = [
      [0, size],
      [0, 10],
      [BLOCK - 5, 10],
      [BLOCK * 2 - 1, BLOCK + 2],
      [size - 3, 100],
      [size, 10],
      [size + 50, 10],
      [12345, 64 * 1024],
    ];
    return { size, reads: ranges.map(([o, l]) => logs.read(runId, Math.max(0, o), l).toString('base64')) };
  };

  it('serves the same bytes before and after compressing, and saves most of the space', async () => {
    const c = compressor();
    const log = buildLog(60_000);
    expect(log.length).toBeGreaterThan(3 * BLOCK);
    for (let off = 0; off < log.length; off += 70_000) logs.append('r1', log.subarray(off, off + 70_000));
    finished.add('r1');
    logs.close('r1'); // the run finished: queued for compression
    const before = views('r1');
    expect(before.size).toBe(log.length);
    await c.idle();
    expect(readdirSync(join(dir, 'logs'))).toEqual(['r1.log.gz']);
    const after = views('r1');
    expect(after).toEqual(before);
    expect(logs.read('r1', 0, log.length).equals(log)).toBe(true);
    // plain gzip for an operator's zcat
    expect(execFileSync('gzip', ['-dc', logs.gzPath('r1')], { maxBuffer: 64 << 20 }).equals(log)).toBe(true);
    const saved = statSync(logs.gzPath('r1')).size;
    expect(saved).toBeLessThan(log.length / 4);
    console.log(`console of ${log.length} bytes compressed to ${saved} (${((100 * saved) / log.length).toFixed(1)}%)`);
  });

  it('leaves the consoles of running runs alone and compresses an empty one', async () => {
    const c = compressor();
    logs.append('running', 'still going\n');
    logs.publish('running', 12);
    logs.append('empty', '');
    finished.add('empty');
    logs.close('empty');
    await c.idle();
    expect(existsSync(logs.path('running'))).toBe(true);
    expect(existsSync(logs.gzPath('running'))).toBe(false);
    expect(existsSync(logs.gzPath('empty'))).toBe(true);
    expect(logs.size('empty')).toBe(0);
    expect(logs.read('empty', 0, 10).length).toBe(0);
  });

  it('compresses at start the consoles an older version left raw', async () => {
    const log = buildLog(2000);
    writeFileSync(logs.path('old'), log);
    finished.add('old');
    const before = views('old');
    const c = compressor();
    c.recover();
    await c.idle();
    expect(existsSync(logs.path('old'))).toBe(false);
    expect(views('old')).toEqual(before);
  });

  it('at start removes a temp file a crash left mid-compression and compresses again', async () => {
    const log = buildLog(5000);
    writeFileSync(logs.path('r'), log);
    finished.add('r');
    // half written, never renamed
    writeFileSync(logs.gzPath('r') + '.tmp', Buffer.from([0x1f, 0x8b, 8, 4, 0, 0]));
    const c = compressor();
    c.recover();
    await c.idle();
    expect(readdirSync(join(dir, 'logs'))).toEqual(['r.log.gz']);
    expect(logs.read('r', 0, log.length).equals(log)).toBe(true);
  });

  it('at start keeps one form when a crash left both (renamed, raw not yet removed)', async () => {
    const log = buildLog(5000);
    writeFileSync(logs.path('r'), log);
    await compressConsole(logs.path('r'), logs.gzPath('r'), log.length);
    // and one whose raw file grew after it was compressed: the raw one is the truth
    writeFileSync(logs.path('grown'), log);
    await compressConsole(logs.path('grown'), logs.gzPath('grown'), log.length);
    writeFileSync(logs.path('grown'), Buffer.concat([log, Buffer.from('more\n')]));
    // and one being turned back into a raw file to be written to, cut short by the crash
    writeFileSync(logs.path('back'), log);
    await compressConsole(logs.path('back'), logs.gzPath('back'), log.length);
    writeFileSync(logs.path('back'), log.subarray(0, 1000));
    compressor().recover();
    expect(readdirSync(join(dir, 'logs')).sort()).toEqual(['back.log.gz', 'grown.log', 'r.log.gz']);
    expect(logs.read('back', 0, log.length + 10).equals(log)).toBe(true);
    expect(logs.read('r', 0, log.length + 10).equals(log)).toBe(true);
    expect(logs.size('grown')).toBe(log.length + 5);
  });

  it('a compressed console written to again becomes raw first, nothing lost', async () => {
    const c = compressor();
    logs.append('r', 'first\n');
    finished.add('r');
    logs.close('r');
    await c.idle();
    expect(existsSync(logs.gzPath('r'))).toBe(true);
    finished.delete('r');
    logs.append('r', 'second\n');
    expect(existsSync(logs.gzPath('r'))).toBe(false);
    expect(logs.read('r', 0, 100).toString()).toBe('first\nsecond\n');
  });

  it('copies of a compressed console are served like the original (backup, restore)', async () => {
    const c = compressor();
    const log = buildLog(3000);
    logs.append('r', log);
    finished.add('r');
    logs.close('r');
    await c.idle();
    const other = mkdtempSync(join(tmpdir(), 'builder-compress-copy-'));
    try {
      const copy = new LogStore(other);
      copyFileSync(logs.gzPath('r'), copy.gzPath('r'));
      expect(copy.read('r', 0, log.length).equals(log)).toBe(true);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('a damaged compressed console is read short and reported, never thrown at a reader', async () => {
    const warned: string[] = [];
    logs = new LogStore(dir, { warn: (event: string) => void warned.push(event) });
    const c = compressor();
    const log = buildLog(20_000);
    logs.append('r', log);
    finished.add('r');
    logs.close('r');
    await c.idle();
    const gz = readFileSync(logs.gzPath('r'));
    // a flipped byte in the second block's deflate data: its CRC no longer matches
    const second = gz.indexOf(Buffer.from([0x1f, 0x8b, 8, 4]), 20);
    gz[second + 100] = gz[second + 100]! ^ 0xff;
    writeFileSync(logs.gzPath('r'), gz);
    logs.forget('r');
    expect(logs.size('r')).toBe(log.length);
    expect(logs.read('r', 0, 100).equals(log.subarray(0, 100))).toBe(true);
    expect(logs.read('r', BLOCK + 10, 100).length).toBe(0);
    expect(warned).toEqual(['console.unreadable']);
    // cut short by hand: the layout itself is unreadable
    writeFileSync(logs.gzPath('r'), gz.subarray(0, gz.length - 7));
    logs.forget('r');
    expect(logs.size('r')).toBe(0);
    expect(warned).toHaveLength(2);
  });
});
