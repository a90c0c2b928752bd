import { afterEach, describe, expect, it, vi } from 'vitest';
import { main, parseCommandLine } from './cli.ts';
import { UsageError } from './errors.ts';
import { compileOptions } from './options.ts';

const base = ['--remote', 'http://127.0.0.1:8330', '--token', 'W', '--platform', 'debian-12'];

afterEach(() => {
  vi.restoreAllMocks();
});

describe('command line', () => {
  it('parses every flag into a fully defaulted options object', () => {
    const o = compileOptions(
      parseCommandLine(
        [
          ...base,
          '--name',
          'w1',
          '--capacity',
          '2',
          '--executor',
          'host',
          '--label',
          'big',
          '--label',
          'x86',
          '--work-dir',
          '/tmp/bw',
          '--reconnect-max-ms',
          '5000',
          '--json-logs',
        ],
        {},
      ),
    );
    expect(o).toMatchObject({
      name: 'w1',
      platform: 'debian-12',
      capacity: 2,
      executor: 'host',
      labels: ['big', 'x86'],
      workDir: '/tmp/bw',
      jsonLogs: true,
      connection: { url: 'ws://127.0.0.1:8330/ws', token: 'W', reconnectMaxMs: 5000, reconnectMinMs: 100 },
      console: { windowBytes: 8 * 1024 * 1024, maxChunkBytes: 256 * 1024 },
    });
  });

  it('takes --remote and --token from BUILDER_REMOTE / BUILDER_TOKEN and defaults the rest', () => {
    const o = compileOptions(
      parseCommandLine(['--platform', 'p'], { BUILDER_REMOTE: 'https://ci.example/builder/', BUILDER_TOKEN: 't' }),
    );
    expect(o.connection.url).toBe('wss://ci.example/builder/ws');
    expect(o.connection.token).toBe('t');
    expect(o.capacity).toBe(1);
    expect(o.executor).toBe('host');
    expect(o.name.length).toBeGreaterThan(0);
  });

  it.each([
    [['--executor', 'docker'], /unknown --executor "docker"/],
    [['--capacity', 'two'], /--capacity must be an integer/],
    [['--name', 'has space'], /--name "has space" is not a valid name/],
    [['--bogus'], /unknown option '--bogus'/],
  ])('refuses %j with a usage error', (extra, message) => {
    expect(() => compileOptions(parseCommandLine([...base, ...extra], {}))).toThrow(message);
    expect(() => compileOptions(parseCommandLine([...base, ...extra], {}))).toThrow(UsageError);
  });

  it('main exits 2 with one line on stderr for a bad argument', async () => {
    const lines: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const outcome = await main([...base, '--executor', 'nope'], {});
    expect(outcome.exitCode).toBe(2);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^builder-worker: unknown --executor "nope" \(known: host, jail, chroot\).*\n$/);
  });
});
