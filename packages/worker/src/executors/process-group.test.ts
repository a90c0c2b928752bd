import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { nativeSpawn } from './native.ts';
import { groupAlive, signalGroup } from './process-group.ts';

describe.skipIf(process.platform !== 'linux')("signalling a job's process group", () => {
  it('reaches every process of the group and says when none is left', async () => {
    // a group of two: the shell and its sleep
    const leader = spawn('/bin/sh', ['-c', 'sleep 30 & wait'], { detached: true, stdio: 'ignore' });
    const pgid = leader.pid!;
    const exited = new Promise((r) => leader.once('exit', r));
    expect(signalGroup(pgid, 0)).toBe(true);
    expect(groupAlive(pgid)).toBe(true);
    expect(signalGroup(pgid, 'SIGKILL')).toBe(true);
    await exited;
    // the sleep went with it (maybe a zombie for a while, if pid 1 is slow to reap it)
    for (let i = 0; i < 100 && groupAlive(pgid); i++) await new Promise((r) => setTimeout(r, 10));
    expect(groupAlive(pgid)).toBe(false);
  });

  it('says so when the group is gone', async () => {
    const done = spawn('/bin/true', [], { detached: true, stdio: 'ignore' });
    await new Promise((r) => done.once('exit', r));
    expect(signalGroup(done.pid!, 0)).toBe(false);
    expect(signalGroup(done.pid!, 'SIGTERM')).toBe(false);
  });

  it.skipIf(!nativeSpawn)('never signals every process (-1) or its own group (0) through the native module', () => {
    expect(() => nativeSpawn!.killGroup(1, 0)).toThrow(/pgid > 1/);
    expect(() => nativeSpawn!.killGroup(0, 0)).toThrow(/pgid > 1/);
  });
});
