import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Logger } from './log.ts';
import { RunEvents, type RunEvent } from './run-events.ts';
import { migrate, type Db } from './store/db.ts';
import { GroupCommit } from './store/group-commit.ts';
import type { RunRow } from './store/rows.ts';
import { writeToFullDisk } from './test-support/full-disk.ts';

function recordingLogger() {
  const lines: { event: string }[] = [];
  const log = (event: string) => void lines.push({ event });
  const logger: Logger = { info: log, warn: log, error: log, debug: log };
  return { lines, logger };
}

const ready = (worker: string): RunEvent => ({ type: 'worker-ready', worker });

describe('RunEvents', () => {
  let db: Db;
  let commit: GroupCommit;
  let events: RunEvents;
  let told: string[];
  let staged: string[][];
  beforeEach(() => {
    db = new Database(':memory:');
    migrate(db);
    commit = new GroupCommit(db);
    events = new RunEvents({ commit, logger: recordingLogger().logger });
    told = [];
    staged = [];
    events.subscribe((e) => told.push(e.type === 'worker-ready' ? e.worker : e.type));
    events.beforeCommit((batch) => staged.push(batch.map((e) => (e.type === 'worker-ready' ? e.worker : e.type))));
  });
  afterEach(() => {
    commit.abandon();
    db.close();
  });

  it('commits a state change at once, but lets a start wait for the lazy delay (a job end joins it)', async () => {
    const run = { id: 'r' } as RunRow;
    const turn = () => new Promise((r) => setImmediate(r));
    commit.write(() => undefined);
    events.emit({ type: 'started', run });
    await turn();
    expect(commit.pending).toBe(true); // nobody waits on a start: it rides along
    expect(told).toEqual([]);
    commit.write(() => undefined);
    events.emit(ready('w'));
    await turn();
    expect(commit.pending).toBe(false); // one commit for both
    expect(told).toEqual(['started', 'w']);
  });

  it('tells an event after its batch commits, in order, and at once when no batch is open', () => {
    commit.write(() => undefined);
    events.emit(ready('a'));
    events.emit(ready('b'));
    expect(told).toEqual([]);
    commit.flush();
    expect(staged).toEqual([['a', 'b']]); // one call for the batch, before its commit
    expect(told).toEqual(['a', 'b']);
    events.emit(ready('c'));
    expect(told).toEqual(['a', 'b', 'c']);
  });

  it('tells nothing of a batch rolled back, nor of a write whose savepoint failed', () => {
    commit.write(() => undefined);
    expect(() =>
      commit.write(() => {
        events.emit(ready('in a failed write'));
        throw new Error('no');
      }),
    ).toThrow('no');
    events.emit(ready('kept'));
    commit.flush();
    expect(told).toEqual(['kept']);

    commit.write(() => undefined);
    events.emit(ready('rolled back'));
    commit.beforeFlush(writeToFullDisk);
    expect(commit.flush()).toBe(false);
    events.emit(ready('after'));
    expect(told).toEqual(['kept', 'after']);
  });

  it('keeps a listener that throws from stopping the others, and says so', () => {
    const { logger, lines } = recordingLogger();
    events = new RunEvents({ commit, logger });
    const got: string[] = [];
    events.subscribe(() => {
      throw new Error('bad listener');
    });
    events.subscribe((e) => got.push(e.type));
    events.emit(ready('a'));
    expect(got).toEqual(['worker-ready']);
    expect(lines.map((l) => l.event)).toContain('run.event_listener_failed');
  });
});
