import { describe, expect, it } from 'vitest';
import { progressBar } from './progress.ts';

function stream(isTTY: boolean) {
  let text = '';
  return { isTTY, columns: 80, write: (t: string) => void (text += t), text: () => text };
}

describe('progressBar', () => {
  it('draws on a terminal, at most ten times a second, and ends with a newline', () => {
    const s = stream(true);
    let now = 0;
    const bar = progressBar(s, 'upload nightly', 4 * 1024 * 1024, () => now);
    now = 1000;
    bar.update(1024 * 1024);
    now = 1050;
    bar.update(2 * 1024 * 1024); // within 100 ms of the last draw: skipped
    now = 2000;
    bar.update(2 * 1024 * 1024);
    bar.finish();
    const frames = s.text().split('\r\x1b[2K').filter(Boolean);
    expect(frames).toHaveLength(3);
    expect(frames[0]).toBe('upload nightly [######..................] 25% 1.0 MiB/s');
    expect(frames[1]).toBe('upload nightly [############............] 50% 1.0 MiB/s');
    expect(s.text().endsWith('\n')).toBe(true);
  });

  it('stays silent when stderr is not a terminal (pipes, CI logs, --json)', () => {
    const s = stream(false);
    const bar = progressBar(s, 'x', 10);
    bar.update(5);
    bar.finish();
    expect(s.text()).toBe('');
  });
});
