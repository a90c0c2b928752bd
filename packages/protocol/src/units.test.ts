import { describe, expect, it } from 'vitest';
import { formatDuration, parseSize } from './units.ts';

describe('formatDuration', () => {
  it('picks the unit by magnitude', () => {
    expect(formatDuration(340)).toBe('340ms');
    expect(formatDuration(1234)).toBe('1.2s');
    expect(formatDuration(10_000)).toBe('10s');
    expect(formatDuration(184_000)).toBe('3m04s');
    expect(formatDuration(2 * 3600_000 + 5 * 60_000)).toBe('2h05m');
    expect(formatDuration(27 * 3600_000)).toBe('1d03h');
  });

  it('truncates, so a duration is never shown longer than it was', () => {
    expect(formatDuration(999.9)).toBe('999ms');
    expect(formatDuration(1999)).toBe('1.9s');
    expect(formatDuration(184_999)).toBe('3m04s');
    expect(formatDuration(3600_000 - 1)).toBe('59m59s');
  });

  it('shows negative and invalid durations as zero', () => {
    expect(formatDuration(-5)).toBe('0ms');
    expect(formatDuration(Number.NaN)).toBe('0ms');
  });
});

describe('parseSize', () => {
  it('reads plain bytes and powers of 1024, case and suffix spelling ignored', () => {
    expect(parseSize('512')).toBe(512);
    expect(parseSize('512B')).toBe(512);
    expect(parseSize('10K')).toBe(10 * 1024);
    expect(parseSize('64m')).toBe(64 * 2 ** 20);
    expect(parseSize('512MiB')).toBe(512 * 2 ** 20);
    expect(parseSize('200 MB')).toBe(200 * 2 ** 20);
    expect(parseSize('8G')).toBe(8 * 2 ** 30);
    expect(parseSize(' 1t ')).toBe(2 ** 40);
  });

  it('reads decimals and rounds down to whole bytes', () => {
    expect(parseSize('1.5G')).toBe(1.5 * 2 ** 30);
    expect(parseSize('0.5k')).toBe(512);
    expect(parseSize('1.3')).toBe(1);
    expect(parseSize('0.001K')).toBe(1);
  });

  it('refuses what is not a size', () => {
    for (const bad of ['', 'lots', '-1M', '1.M', '.5G', '1X', '1 K B', '1KiBB', '1e3', '99999999T']) {
      expect(parseSize(bad), bad).toBeNull();
    }
  });
});
