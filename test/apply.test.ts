import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from './harness.ts';

const NIGHTLY = (timeout: string, retries = 0) =>
  [
    'platforms: debian-12',
    'schedule: "0 3 * * *"',
    `timeout: ${timeout}`,
    `retries: ${retries}`,
    'script: |',
    '  make test',
    '',
  ].join('\n');

describe('apply: jobs from files in a git checkout', () => {
  let c: Cluster;
  let repo: string;
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], { cwd: repo })
      .toString()
      .trim();
  const file = (name: string) => join(repo, 'jobs', name);
  const jobs = async (): Promise<{ name: string; timeoutSec: number; retries: number; definition: unknown }[]> =>
    JSON.parse((await c.client(['jobs', '--json'])).stdout);

  beforeAll(async () => {
    c = await Cluster.start();
    repo = join(c.dir, 'repo');
    mkdirSync(join(repo, 'jobs'), { recursive: true });
    git('init', '-q');
    git('remote', 'add', 'origin', 'https://github.com/example/jobs.git'); // never fetched
    writeFileSync(file('nightly.yaml'), NIGHTLY('90m'));
    writeFileSync(file('docs.yaml'), 'platforms: [debian-12]\nscript: make docs\n');
    git('add', '.');
    git('commit', '-q', '-m', 'jobs');
    await c.schedule('handmade', 'echo by hand\n');
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('dry run prints the plan and changes nothing', async () => {
    const r = await c.client(['apply', '--dry-run', file('nightly.yaml'), file('docs.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`+ nightly (${file('nightly.yaml')}): create`);
    expect(r.stdout).toContain(`+ docs (${file('docs.yaml')}): create`);
    expect(r.stderr).toContain('dry run: nothing was changed');
    expect((await jobs()).map((j) => j.name)).toEqual(['handmade']);
  });

  it('creates the jobs and records where they are defined', async () => {
    const r = await c.client(['apply', file('nightly.yaml'), file('docs.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('applied: 2 created, 0 changed, 0 unchanged, 0 unscheduled');
    const commit = git('rev-parse', 'HEAD');
    const nightly = (await jobs()).find((j) => j.name === 'nightly');
    expect(nightly).toMatchObject({ timeoutSec: 5400, schedule: '0 3 * * *' });
    expect(nightly?.definition).toEqual({
      repo: 'https://github.com/example/jobs.git',
      commit,
      path: 'jobs/nightly.yaml',
      modified: false,
      url: `https://github.com/example/jobs/blob/${commit}/jobs/nightly.yaml`,
    });
    const again = await c.client(['apply', file('nightly.yaml'), file('docs.yaml')]);
    expect(again.stdout).toContain(`= nightly (${file('nightly.yaml')}): unchanged`);
  });

  it('changes a job to match its edited file, printing old → new', async () => {
    writeFileSync(file('nightly.yaml'), NIGHTLY('2h'));
    git('commit', '-q', '-am', 'longer timeout');
    const r = await c.client(['apply', file('nightly.yaml'), file('docs.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`~ nightly (${file('nightly.yaml')}): change`);
    expect(r.stdout).toContain('timeout: 1h30m → 2h00m');
    expect(r.stdout).toContain(`= docs (${file('docs.yaml')}): unchanged`);
    expect((await jobs()).find((j) => j.name === 'nightly')?.timeoutSec).toBe(7200);
    // an unchanged file at a newer commit: its link follows the commit
    const docs = (await jobs()).find((j) => j.name === 'docs');
    expect(docs?.definition).toMatchObject({ commit: git('rev-parse', 'HEAD') });
  });

  it('changes nothing when one file is broken, naming its file, line and field', async () => {
    writeFileSync(file('nightly.yaml'), NIGHTLY('2h', 5));
    writeFileSync(file('bad.yaml'), 'platforms: debian-12\nscript: x\ntimeout: soon\n');
    const r = await c.client(['apply', file('nightly.yaml'), file('bad.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file('bad.yaml')}:3: timeout: must be seconds or a duration`);
    expect(r.stderr).toContain('nothing was changed');
    expect((await jobs()).find((j) => j.name === 'nightly')?.retries).toBe(0);
    rmSync(file('bad.yaml'));
    git('checkout', '-q', '--', 'jobs/nightly.yaml');
  });

  it('prunes jobs whose files are gone, never jobs made with schedule', async () => {
    const dry = await c.client(['apply', '--prune', '--dry-run', '--json', file('nightly.yaml')]);
    expect(JSON.parse(dry.stdout)).toEqual({
      dryRun: true,
      changes: [
        { kind: 'unchanged', name: 'nightly', file: file('nightly.yaml'), refresh: false },
        { kind: 'unschedule', name: 'docs' },
      ],
    });
    expect((await jobs()).map((j) => j.name)).toEqual(['docs', 'handmade', 'nightly']);
    const r = await c.client(['apply', '--prune', file('nightly.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('- docs: unschedule');
    expect(r.stdout).not.toContain('handmade');
    expect((await jobs()).map((j) => j.name)).toEqual(['handmade', 'nightly']);
  });

  it('links the job and run pages to the file on the forge', async () => {
    expect((await c.client(['execute', 'nightly'])).code).toBe(0);
    const link = `href="https://github.com/example/jobs/blob/${git('rev-parse', 'HEAD')}/jobs/nightly.yaml"`;
    for (const page of ['/job/nightly', '/job/nightly/run/1']) {
      const body = await (await fetch(`${c.url}${page}`)).text();
      expect(body).toContain(link);
      expect(body).toContain('https://github.com/example/jobs.git@');
    }
  });
});
