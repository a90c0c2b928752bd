import { describe, expect, it } from 'vitest';
import { Registry, type ConnectedWorker } from './registry.ts';

function worker(name: string, platform: string): ConnectedWorker {
  return {
    name,
    platform,
    labels: [],
    capacity: 1,
    executor: 'host',
    connectedAt: 0,
    lastSeenAt: 0,
    runs: new Set(),
    refusing: false,
    send: () => undefined,
    close: () => undefined,
  };
}

describe('Registry', () => {
  it('lists the workers of a platform as they connect, replace each other and leave', () => {
    const r = new Registry();
    const a = worker('a', 'linux');
    const b = worker('b', 'linux');
    const c = worker('c', 'freebsd');
    r.add(a);
    r.add(b);
    r.add(c);
    expect(r.forPlatform('linux')).toEqual([a, b]);
    expect([...r.platforms()].sort()).toEqual(['freebsd', 'linux']);

    // a reconnect replaces the old connection in its platform's list, on whatever platform it now is
    const a2 = worker('a', 'freebsd');
    expect(r.add(a2)).toBe(a);
    expect(r.forPlatform('linux')).toEqual([b]);
    expect(r.forPlatform('freebsd')).toEqual([c, a2]);
    // the old connection closing later removes nothing
    expect(r.remove(a)).toBe(false);
    expect(r.forPlatform('freebsd')).toEqual([c, a2]);

    expect(r.remove(b)).toBe(true);
    expect(r.forPlatform('linux')).toEqual([]);
    expect([...r.platforms()]).not.toContain('linux');
    r.remove(c);
    r.remove(a2);
    expect([...r.platforms()]).toEqual([]);
    expect(r.all()).toEqual([]);
  });
});
