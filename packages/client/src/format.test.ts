import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@builder/protocol';
import { Backoff } from './backoff.ts';
import { collectList, collectParam, parseDateTime, scheduleFrom } from './cli/options.ts';
import { exitCodeForServerError } from './exit.ts';
import { formatInZone, formatRunState, formatRunSummary, formatTable } from './format.ts';
import { webSocketUrl } from './remote.ts';
import { finishedRun, makeRun, runningRun } from './testing/fixtures.ts';

describe('format', () => {
  it('formats a time in the job time zone with its offset', () => {
    const ms = Date.UTC(2025, 0, 31, 2, 0, 0);
    expect(formatInZone(ms, 'UTC')).toBe('2025-01-31T02:00:00Z');
    expect(formatInZone(ms, 'Europe/Berlin')).toBe('2025-01-31T03:00:00+01:00');
    expect(formatInZone(ms, 'America/New_York')).toBe('2025-01-30T21:00:00-05:00');
    expect(formatInZone(ms, 'Asia/Kolkata')).toBe('2025-01-31T07:30:00+05:30');
    expect(formatInZone(ms, 'No/Such_Zone')).toBe('2025-01-31T02:00:00Z');
  });

  it('summarises runs', () => {
    expect(formatRunSummary(finishedRun(0))).toBe('hello/7 on debian-12: exited 0 (succeeded) in 1.2s');
    expect(formatRunSummary(finishedRun(2))).toBe('hello/7 on debian-12: exited 2 (failed) in 1.2s');
    expect(formatRunState(makeRun({ waiting: 'no worker for debian-12 online' }))).toBe(
      'queued (no worker for debian-12 online)',
    );
    expect(formatRunState(runningRun())).toBe('running on w1');
    expect(formatRunState(makeRun({ state: 'timeout', result: { kind: 'timeout' } }))).toBe('timeout');
  });

  it('aligns tables', () => {
    expect(
      formatTable(
        ['A', 'LONG'],
        [
          ['xyz', '1'],
          ['q', '22'],
        ],
      ),
    ).toBe('A    LONG\nxyz  1\nq    22');
  });
});

describe('options', () => {
  it('collects platforms and params', () => {
    expect(collectList('b,c', collectList('a', undefined))).toEqual(['a', 'b', 'c']);
    expect(collectParam('V=a=b', collectParam('X=1', undefined))).toEqual({ X: '1', V: 'a=b' });
    expect(() => collectParam('novalue', undefined)).toThrow(/KEY=VALUE/);
  });

  it('maps periods to presets', () => {
    expect(scheduleFrom({ period: 'daily' })).toBe('@daily');
    expect(scheduleFrom({ period: 'never' })).toBeNull();
    expect(scheduleFrom({ cron: '0 2 * * *' })).toBe('0 2 * * *');
    expect(scheduleFrom({})).toBeUndefined();
  });

  it('parses ISO date-times only', () => {
    expect(parseDateTime('2025-01-31T02:00:00Z')).toBe(Date.UTC(2025, 0, 31, 2));
    expect(parseDateTime('tomorrow')).toBeUndefined();
    expect(parseDateTime('2025-13-45T99:00:00Z')).toBeUndefined();
  });
});

describe('remote and backoff', () => {
  it('derives the WebSocket URL', () => {
    expect(webSocketUrl('http://127.0.0.1:8330')).toBe('ws://127.0.0.1:8330/ws');
    expect(webSocketUrl('https://ci.example.org/builder/')).toBe('wss://ci.example.org/builder/ws');
    expect(webSocketUrl('ws://h:1/ws')).toBe('ws://h:1/ws');
    expect(() => webSocketUrl('ftp://h')).toThrow(/scheme/);
  });

  it('grows exponentially with jitter up to the cap', () => {
    const low = new Backoff({ random: () => 0 });
    const high = new Backoff({ random: () => 0.999999 });
    const lows = Array.from({ length: 8 }, () => low.next());
    const highs = Array.from({ length: 8 }, () => high.next());
    expect(lows).toEqual([125, 250, 500, 1000, 2000, 2500, 2500, 2500]);
    expect(highs).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
    low.reset();
    expect(low.next()).toBe(125);
  });

  it('maps server error codes to exit codes', () => {
    expect(exitCodeForServerError(ErrorCode.NotFound)).toBe(3);
    expect(exitCodeForServerError(ErrorCode.InvalidArgument)).toBe(2);
    expect(exitCodeForServerError(ErrorCode.Conflict)).toBe(2);
    expect(exitCodeForServerError(ErrorCode.Unauthorized)).toBe(4);
    expect(exitCodeForServerError(ErrorCode.Forbidden)).toBe(4);
    expect(exitCodeForServerError(ErrorCode.StorageFull)).toBe(4);
  });
});
