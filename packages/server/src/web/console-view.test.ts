import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogStore } from '../console/log-store.ts';
import type { Context } from '../context.ts';
import type { RunRow } from '../store/rows.ts';
import { CONSOLE_WINDOW, consoleWindow, renderConsoleSection } from './console-view.ts';

describe('renderConsoleSection', () => {
  let dir: string;
  let logs: LogStore;
  let ctx: Context;
  let read: number;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'console-view-'));
    logs = new LogStore(dir);
    read = 0;
    const counting = Object.create(logs) as LogStore;
    counting.read = (id, offset, length) => {
      const buf = logs.read(id, offset, length);
      read += buf.length;
      return buf;
    };
    ctx = { logs: counting } as unknown as Context;
  });
  afterEach(() => {
    logs.closeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Appended and committed, as the console intake leaves it (readers see only committed bytes). */
  const write = (id: string, text: string | Buffer) => logs.publish(id, logs.append(id, text));
  const run = (state: RunRow['state'], id = 'r1') => ({ id, job: 'my.job', number: 7, state }) as RunRow;
  const q = (s = '') => new URLSearchParams(s);

  it('renders a short log whole, escaped and coloured, with the raw link', () => {
    write('r1', '\x1b[31mred\x1b[0m <script>alert(1)</script>\n\x1b]8;;javascript:alert(1)\x07x\x1b]8;;\x07\n');
    const out = renderConsoleSection(ctx, run('failed'), q());
    expect(out).toContain('<span class="f1">red</span> &lt;script&gt;alert(1)&lt;/script&gt;\nx\n</pre>');
    expect(out).not.toContain('<script>alert');
    expect(out).not.toContain('javascript:');
    expect(out).toContain('href="/job/my.job/run/7/console.txt">raw log</a>');
    expect(out).toContain('data-src="/job/my.job/run/7/console.txt"');
    expect(out).toContain('data-live="0"');
    expect(out).toContain('<script type="module" src="/static/browser/console.js"></script>');
    expect(out).not.toContain('earlier output');
    expect(out).not.toContain('style=');
  });

  it('shows the tail of a long log from a line start and pages back and forth over the same cuts', () => {
    const lines: string[] = [];
    for (let i = 0; i < 20_000; i++) lines.push(`line ${i} ${'x'.repeat(i % 70)}\n`);
    const all = lines.join('');
    write('r1', all);
    const total = Buffer.byteLength(all);

    const tail = consoleWindow(ctx, run('succeeded'), q());
    expect(tail.end).toBe(total);
    expect(all[tail.start - 1]).toBe('\n');
    expect(total - tail.start).toBeLessThanOrEqual(CONSOLE_WINDOW);
    expect(read).toBeLessThanOrEqual(CONSOLE_WINDOW + 1);

    const html = renderConsoleSection(ctx, run('succeeded'), q());
    expect(html).toContain(`href="/job/my.job/run/7?before=${tail.start}#console" rel="nofollow">earlier output</a>`);
    expect(html).toContain(`bytes ${tail.start}–${total} of ${total}`);
    expect(html).not.toContain('later output');

    const prev = consoleWindow(ctx, run('succeeded'), q(`before=${tail.start}`));
    expect(prev.end).toBe(tail.start);
    expect(all[prev.start - 1]).toBe('\n');
    expect(prev.bytes.toString()).toBe(all.slice(prev.start, prev.end));
    const prevHtml = renderConsoleSection(ctx, run('succeeded'), q(`before=${tail.start}`));
    expect(prevHtml).toContain(`href="/job/my.job/run/7?after=${tail.start}#console" rel="nofollow">later output</a>`);

    const next = consoleWindow(ctx, run('succeeded'), q(`after=${prev.end}`));
    expect([next.start, next.end]).toEqual([tail.start, total]);
    // an offset inside a line snaps to the next line start
    const mid = consoleWindow(ctx, run('succeeded'), q(`after=${prev.start + 3}`));
    expect(all[mid.start - 1]).toBe('\n');
    expect(mid.start).toBeGreaterThan(prev.start);
  });

  it('is live while running and leaves a partial last line to the browser', () => {
    write('r1', 'done line\npartial');
    const out = renderConsoleSection(ctx, run('running'), q());
    expect(out).toContain('data-offset="10"');
    expect(out).toContain('data-live="1"');
    expect(out).toMatch(/>\s*done line\n<\/pre>/);
    // paging back from a live log is not live
    write('r1', '\n'.padStart(CONSOLE_WINDOW + 10, 'y'));
    expect(renderConsoleSection(ctx, run('running'), q('before=10'))).toContain('data-live="0"');
  });

  it('renders a run without output and ignores bad offsets', () => {
    expect(renderConsoleSection(ctx, run('queued', 'none'), q())).toContain('no output yet');
    write('r1', 'a\nb\n');
    for (const bad of ['before=x', 'after=-1', 'before=1e3']) {
      const w = consoleWindow(ctx, run('succeeded'), q(bad));
      expect([w.start, w.end]).toEqual([0, 4]);
    }
  });

  it('reads only the window of a big log', () => {
    const line = Buffer.from(`${'z'.repeat(99)}\n`);
    const block = Buffer.concat(Array.from({ length: 10_000 }, () => line)); // 1 MB
    for (let i = 0; i < 20; i++) write('big', block);
    read = 0;
    const out = renderConsoleSection(ctx, run('succeeded', 'big'), q('before=10000000'));
    expect(read).toBeLessThanOrEqual(CONSOLE_WINDOW + 1);
    expect(out).toContain('of 20000000 (19 MiB)');
  });
});
