import { describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from './log.ts';

const T = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

function capture(options: { json: boolean; level?: 'debug' | 'info' | 'warn' | 'error' }) {
  const lines: string[] = [];
  const log = createLogger({ ...options, now: () => T, write: (line) => lines.push(line) });
  return { lines, log };
}

describe('createLogger', () => {
  it('writes one JSON object per line: time, level, event, then the fields', () => {
    const { lines, log } = capture({ json: true });
    log.info('run.finished', { run: 'r1', job: 'build', state: 'succeeded' });
    expect(lines).toEqual([
      '{"time":"2026-01-02T03:04:05.678Z","level":"info","event":"run.finished","run":"r1","job":"build","state":"succeeded"}\n',
    ]);
  });

  it('child() adds its fields to every line, the call’s own fields win', () => {
    const { lines, log } = capture({ json: true });
    const run = log.child({ worker: 'w1' }).child({ run: 'r1', attempt: 1 });
    run.warn('console.sink_error', { attempt: 2 });
    log.info('worker.starting');
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { time: expect.any(String), level: 'warn', event: 'console.sink_error', worker: 'w1', run: 'r1', attempt: 2 },
      { time: expect.any(String), level: 'info', event: 'worker.starting' },
    ]);
  });

  it('logs an error as its message and errno code, not as {}', () => {
    const { lines, log } = capture({ json: true });
    log.error('executor.cleanup_failed', { error: Object.assign(new Error('no such dir'), { code: 'ENOENT' }) });
    log.error('x.y', { error: new Error('plain') });
    expect(JSON.parse(lines[0]!).error).toBe('no such dir [ENOENT]');
    expect(JSON.parse(lines[1]!).error).toBe('plain');
  });

  it('drops lines below the level (info by default)', () => {
    const quiet = capture({ json: true });
    quiet.log.debug('a.b');
    quiet.log.info('c.d');
    expect(quiet.lines).toHaveLength(1);
    const loud = capture({ json: true, level: 'debug' });
    loud.log.debug('a.b');
    expect(loud.lines).toHaveLength(1);
    const warn = capture({ json: true, level: 'warn' });
    warn.log.info('a.b');
    warn.log.error('c.d');
    expect(warn.lines.map((l) => JSON.parse(l).event)).toEqual(['c.d']);
  });

  it('on a terminal: time of day, level, event, then key=value, quoting what needs it', () => {
    const { lines, log } = capture({ json: false });
    log.child({ run: 'r1' }).warn('connection.closed', { code: 1006, reason: '', hint: 'will retry', labels: ['a'] });
    expect(lines).toEqual([
      '03:04:05.678 WARN  connection.closed run=r1 code=1006 reason="" hint="will retry" labels=["a"]\n',
    ]);
  });

  it('the silent logger drops everything, children too', () => {
    expect(() => silentLogger.child({ run: 'r' }).error('a.b', { x: 1 })).not.toThrow();
  });
});
