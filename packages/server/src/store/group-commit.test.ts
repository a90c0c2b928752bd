import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStorageFull } from '../storage/full.ts';
import type { Db } from './db.ts';
import { GroupCommit } from './group-commit.ts';
import { writeToFullDisk } from '../test-support/full-disk.ts';
import { removeTempDb, tempDb } from '../test-support/temp-db.ts';

describe('GroupCommit when the disk is full', () => {
  let dir: string;
  let db: Db;
  let commit: GroupCommit;
  let told: { rolledBack: boolean; full: boolean }[];
  const notes = () => (db.prepare('SELECT text FROM t ORDER BY text').all() as { text: string }[]).map((r) => r.text);

  beforeEach(() => {
    ({ dir, db } = tempDb('builder-commit-'));
    db.exec('CREATE TABLE t (text TEXT NOT NULL)');
    commit = new GroupCommit(db);
    told = [];
    commit.onStorageFull = (err, rolledBack) => told.push({ rolledBack, full: isStorageFull(err) });
  });
  afterEach(() => {
    removeTempDb(dir, db);
  });

  it('rolls back a batch whose flush hits ENOSPC, sends none of its replies, and commits the next one', () => {
    const insert = db.prepare('INSERT INTO t (text) VALUES (?)');
    commit.write(() => insert.run('before'));
    expect(commit.flush()).toBe(true);

    const sent: string[] = [];
    commit.write(() => insert.run('lost'));
    commit.then(
      () => sent.push('ack'),
      () => sent.push('refused'),
    );
    commit.thenLazily(() => sent.push('lazy ack'));
    commit.beforeFlush(writeToFullDisk); // as when fsyncing the console files of the batch fails

    expect(commit.flush()).toBe(false);
    expect(sent).toEqual(['refused']);
    expect(told).toEqual([{ rolledBack: true, full: true }]);
    expect(db.inTransaction).toBe(false);
    expect(commit.pending).toBe(false);
    expect(commit.rollbacks).toBe(1);
    expect(notes()).toEqual(['before']);

    // the same change, sent again once there is room, is taken as if nothing had happened
    commit.write(() => insert.run('again'));
    commit.then(() => sent.push('ack again'));
    expect(commit.flush()).toBe(true);
    expect(sent).toEqual(['refused', 'ack again']);
    expect(notes()).toEqual(['again', 'before']);
  });

  it('ends the whole batch when a write hits SQLITE_FULL (SQLite rolls it all back)', () => {
    const insert = db.prepare('INSERT INTO t (text) VALUES (?)');
    const sent: string[] = [];
    commit.write(() => insert.run('small'));
    commit.then(
      () => sent.push('ack small'),
      () => sent.push('refused small'),
    );
    // a database that may not grow: the first change that needs a new page fails with SQLITE_FULL
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    expect(() => commit.write(() => insert.run('x'.repeat(64 * 1024)))).toThrow(
      expect.objectContaining({ code: 'SQLITE_FULL' }),
    );
    expect(sent).toEqual(['refused small']);
    expect(told).toEqual([{ rolledBack: true, full: true }]);
    expect(commit.pending).toBe(false);
    expect(db.inTransaction).toBe(false);
    expect(commit.flush()).toBe(true);
    expect(notes()).toEqual([]);

    db.pragma('max_page_count = 1073741823');
    commit.write(() => insert.run('small'));
    expect(commit.flush()).toBe(true);
    expect(notes()).toEqual(['small']);
  });

  it('commits the next batch someone waits on at once, after a step hurried the one committing', async () => {
    const insert = db.prepare('INSERT INTO t (text) VALUES (?)');
    commit = new GroupCommit(db, 60_000); // a lazy batch would wait a minute
    commit.write(() => insert.run('a'));
    commit.beforeFlush(() => commit.hurry()); // as an assignment made just before the commit does
    expect(commit.flush()).toBe(true);
    await new Promise((r) => setImmediate(r)); // the hurried flush comes and finds nothing open
    const sent: string[] = [];
    commit.write(() => insert.run('b'));
    commit.then(() => sent.push('b'));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(sent).toEqual(['b']);
  });
});
