import { describe, expect, it } from 'vitest';
import { decode, packageListSha256, packageListText, WorkerToServerSchema } from './index.ts';

const RUN = '0f8fad5b-d9cb-469f-a165-70867728950e';

describe('the environment in started', () => {
  it('is optional: a started from an older worker still decodes', () => {
    const msg = decode(WorkerToServerSchema, JSON.stringify({ type: 'started', runId: RUN, attempt: 1, startedAt: 1 }));
    expect(msg).toMatchObject({ type: 'started' });
    expect('environment' in msg && msg.environment).toBeFalsy();
  });

  it('carries worker, executor, kernel, version and the base; a malformed one names the field', () => {
    const environment = {
      worker: 'w1',
      executor: 'chroot',
      kernel: 'Linux 6.1.0 #1 SMP x86_64',
      builderVersion: '0.1.0',
      base: {
        path: '/roots/bookworm',
        suite: 'bookworm',
        packagesSha256: 'a'.repeat(64),
        packages: [{ name: 'apt', version: '2.6.1', arch: 'amd64' }],
      },
    };
    const ok = { type: 'started', runId: RUN, attempt: 1, startedAt: 1, environment };
    expect(decode(WorkerToServerSchema, JSON.stringify(ok))).toEqual(ok);
    const bad = { ...ok, environment: { ...environment, base: { ...environment.base, packagesSha256: 'xyz' } } };
    expect(() => decode(WorkerToServerSchema, JSON.stringify(bad))).toThrow(/packagesSha256/);
  });

  it('hashes a package list in one canonical order', () => {
    const a = [
      { name: 'zlib1g', version: '1', arch: 'amd64' },
      { name: 'apt', version: '2', arch: 'amd64' },
    ];
    expect(packageListText(a)).toBe('apt 2 amd64\nzlib1g 1 amd64\n');
    expect(packageListSha256(a)).toBe(packageListSha256([...a].reverse()));
    expect(packageListSha256(a)).not.toBe(packageListSha256([{ ...a[0]!, version: '1.1' }, a[1]!]));
  });
});
