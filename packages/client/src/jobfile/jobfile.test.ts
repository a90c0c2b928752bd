import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadJobFile } from './load.ts';
import { JobFileError, parseJobFile } from './parse.ts';
import { durationSeconds, jobFileJsonSchema } from './schema.ts';

function problems(text: string): string[] {
  try {
    parseJobFile(text, 'jobs/nightly.yaml');
  } catch (error) {
    if (error instanceof JobFileError) return [...error.problems];
    throw error;
  }
  throw new Error('expected a JobFileError');
}

describe('parseJobFile', () => {
  it('reads every key', () => {
    const { file } = parseJobFile(
      [
        'name: nightly',
        'platforms: [debian-12, alpine]',
        'script: |',
        '  make test',
        'schedule: "0 3 * * *"',
        'timezone: Europe/Berlin',
        'missed: skip',
        'timeout: 1h30m',
        'kill_grace: 20',
        'retries: 2',
        'retry_backoff: 1m',
        'concurrency: 3',
        'params: { MODE: fast, N: 3 }',
        'secrets: [TOKEN]',
        'alert_webhooks: [https://example.com/hook]',
        'source: { git: https://example.com/r.git, ref: main }',
      ].join('\n'),
      'f.yaml',
    );
    expect(file).toMatchObject({
      name: 'nightly',
      platforms: ['debian-12', 'alpine'],
      script: 'make test\n',
      schedule: '0 3 * * *',
      timezone: 'Europe/Berlin',
      missed: 'skip',
      timeout: '1h30m',
      kill_grace: 20,
      retries: 2,
      retry_backoff: '1m',
      concurrency: 3,
      params: { MODE: 'fast', N: 3 },
      secrets: ['TOKEN'],
      alert_webhooks: ['https://example.com/hook'],
      source: { git: 'https://example.com/r.git', ref: 'main' },
    });
  });

  it('names the file, line and field of a bad value', () => {
    const text = ['platforms: [a]', 'script: make', '', '# when', 'timeout: soon'].join('\n');
    expect(problems(text)).toEqual([
      'jobs/nightly.yaml:5: timeout: must be seconds or a duration such as 90s, 30m, 1h30m or 2d',
    ]);
  });

  it('names the line of an item in a list and of an unknown key', () => {
    expect(problems('platforms:\n  - a\n  - 7\nscript: x\n')[0]).toMatch(/^jobs\/nightly\.yaml:3: platforms/);
    expect(problems('platforms: a\nscript: x\ntimeot: 5\n')).toEqual(['jobs/nightly.yaml:3: timeot: unknown key']);
    expect(problems('platforms: a\nscript: x\ntimeot: 5\nretries: -1\nconcurrency: 0\n')).toEqual([
      'jobs/nightly.yaml:3: timeot: unknown key',
      'jobs/nightly.yaml:4: retries: Too small: expected number to be >=0',
      'jobs/nightly.yaml:5: concurrency: Too small: expected number to be >=1',
    ]);
  });

  it('refuses a file without a script, or with two', () => {
    expect(problems('platforms: a\n')).toEqual([
      'jobs/nightly.yaml:1: give exactly one of script, script_file or template',
    ]);
    expect(problems('platforms: a\nscript: x\ntemplate: t\n')).toEqual([
      'jobs/nightly.yaml:3: template: give exactly one of script, script_file or template',
    ]);
  });

  it('reports YAML syntax errors and a document that is not a mapping with their line', () => {
    expect(problems('platforms: a\nscript: x\nscript: y\n')[0]).toMatch(/^jobs\/nightly\.yaml:3: /);
    expect(problems('platforms: [a\nscript: x\n')[0]).toMatch(/^jobs\/nightly\.yaml:\d+: /);
    expect(problems('- a\n')).toEqual(['jobs/nightly.yaml:1: a job file is a mapping of keys such as platforms:']);
  });
});

describe('durationSeconds', () => {
  it('reads seconds and units', () => {
    expect([90, '90', '90s', '30m', '1h30m', '2d', '1.5h'].map(durationSeconds)).toEqual([
      90, 90, 90, 1800, 5400, 172_800, 5400,
    ]);
  });
});

describe('loadJobFile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jobfile-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('maps friendly keys onto the spec, reading script_file relative to the file', async () => {
    await mkdir(join(dir, 'jobs'));
    await writeFile(join(dir, 'jobs', 'build.sh'), 'make\n');
    await writeFile(
      join(dir, 'jobs', 'nightly.yaml'),
      'platforms: debian\nscript_file: build.sh\ntimeout: 2h\nsource: { git: https://x/r.git }\n',
    );
    const spec = await loadJobFile(join(dir, 'jobs', 'nightly.yaml'), { templatesDir: dir });
    expect(spec).toEqual({
      name: 'nightly',
      platforms: ['debian'],
      script: 'make\n',
      schedule: null,
      timeoutSec: 7200,
      source: { git: 'https://x/r.git', ref: 'HEAD' },
    });
  });

  it("names the file's key for the server's rules and a missing script file", async () => {
    const file = join(dir, 'j.yaml');
    await writeFile(file, 'platforms: a\nscript: x\n\ntimeout: 30d\n');
    await expect(loadJobFile(file, { templatesDir: dir })).rejects.toThrow(`${file}:4: timeout: `);
    await writeFile(file, 'platforms: a\nscript: x\nschedule: 0 99 * * *\n');
    await expect(loadJobFile(file, { templatesDir: dir })).rejects.toThrow(
      `${file}:3: schedule: invalid cron expression`,
    );
    await writeFile(file, 'platforms: a\nscript: x\ntimezone: Mars/Olympus\n');
    await expect(loadJobFile(file, { templatesDir: dir })).rejects.toThrow(`${file}:3: timezone: unknown time zone`);
    await writeFile(file, 'platforms: a\nscript_file: nope.sh\n');
    await expect(loadJobFile(file, { templatesDir: dir })).rejects.toThrow(`${file}:2: script_file: cannot read`);
  });

  it('renders a template with vars per platform', async () => {
    await mkdir(join(dir, 'tpl', 'hello'), { recursive: true });
    await writeFile(join(dir, 'tpl', 'hello', 'default.sh'), 'echo {{WHO}} on {{PLATFORM}}\n');
    const file = join(dir, 'j.yaml');
    await writeFile(file, 'platforms: [a, b]\ntemplate: hello\nvars: { WHO: me }\n');
    const spec = await loadJobFile(file, { templatesDir: join(dir, 'tpl') });
    expect(spec.scripts).toEqual({ a: 'echo me on a\n', b: 'echo me on b\n' });
    expect(spec.template).toEqual({ name: 'hello', vars: { WHO: 'me' } });
  });

  it("reads a prepare step inline or from prepare_file, or takes the template's prepare part", async () => {
    const file = join(dir, 'j.yaml');
    await writeFile(file, 'platforms: a\nscript: make\nprepare: apt-get install -y libfoo-dev\n');
    expect(await loadJobFile(file, { templatesDir: dir })).toMatchObject({
      script: 'make',
      prepare: 'apt-get install -y libfoo-dev',
    });
    await writeFile(join(dir, 'deps.sh'), 'apt-get install -y libbar-dev\n');
    await writeFile(file, 'platforms: a\nscript: make\nprepare_file: deps.sh\n');
    expect((await loadJobFile(file, { templatesDir: dir })).prepare).toBe('apt-get install -y libbar-dev\n');
    await writeFile(file, 'platforms: a\nscript: make\nprepare_file: nope.sh\n');
    await expect(loadJobFile(file, { templatesDir: dir })).rejects.toThrow(`${file}:3: prepare_file: cannot read`);
    await writeFile(file, 'platforms: a\nscript: make\nprepare: x\nprepare_file: deps.sh\n');
    await expect(loadJobFile(file, { templatesDir: dir })).rejects.toThrow('give prepare or prepare_file, not both');

    await mkdir(join(dir, 'tpl', 'pkg'), { recursive: true });
    await writeFile(join(dir, 'tpl', 'pkg', 'debian.sh'), 'build on {{PLATFORM}}\n');
    await writeFile(join(dir, 'tpl', 'pkg', 'debian.prepare.sh'), 'deps {{DEPS}} on {{PLATFORM}}\n');
    await writeFile(join(dir, 'tpl', 'pkg', 'default.sh'), 'elsewhere\n');
    await writeFile(file, 'platforms: [debian-12, alpine-3]\ntemplate: pkg\nvars: { DEPS: libfoo }\n');
    const spec = await loadJobFile(file, { templatesDir: join(dir, 'tpl') });
    // only the platform whose file has a prepare part gets one; DEPS is used there only
    expect(spec.prepares).toEqual({ 'debian-12': 'deps libfoo on debian-12\n' });
    expect(spec.prepare).toBeUndefined();
    await writeFile(file, 'platforms: [debian-12]\ntemplate: pkg\nvars: { DEPS: x }\nprepare: mine\n');
    expect(await loadJobFile(file, { templatesDir: join(dir, 'tpl') })).toMatchObject({ prepare: 'mine' });
  });
});

describe('schemas/job.schema.json', () => {
  it('is generated from the zod schema (run scripts/job-schema.mjs after changing it)', async () => {
    const published = await readFile(new URL('../../../../schemas/job.schema.json', import.meta.url), 'utf8');
    expect(JSON.parse(published)).toEqual(jobFileJsonSchema());
  });
});
