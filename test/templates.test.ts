import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, waitFor } from './harness.ts';

describe('templated jobs: rendered per platform by the client, one script per run', () => {
  let c: Cluster;
  let templates = '';
  beforeAll(async () => {
    c = await Cluster.start();
    templates = join(c.dir, 'templates');
    mkdirSync(join(templates, 'hello'), { recursive: true });
    writeFileSync(join(templates, 'hello', 'debian.sh'), 'echo "debian.sh on {{PLATFORM}} says {{ GREETING }}"\n');
    writeFileSync(join(templates, 'hello', 'freebsd.sh'), 'echo "freebsd.sh on {{PLATFORM}} says {{GREETING}}"\n');
    c.startWorker('deb', { platform: 'debian-12' });
    c.startWorker('bsd', { platform: 'freebsd-14' });
    await c.waitForWorkers('deb', 'bsd');
  });
  afterAll(async () => {
    await c?.stop();
  });

  const schedule = (name: string, ...extra: string[]) =>
    c.client([
      'schedule',
      name,
      '--platform',
      'debian-12,freebsd-14',
      '--template',
      'hello',
      '--templates-dir',
      templates,
      ...extra,
    ]);

  const jobNames = async (): Promise<string[]> => {
    const r = await c.client(['jobs', '--json']);
    expect(r.code).toBe(0);
    return (JSON.parse(r.stdout) as { name: string }[]).map((j) => j.name);
  };

  it('runs each platform with its own rendered script', async () => {
    const s = await schedule('greet', '--var', 'GREETING=hi there');
    expect(s.stderr).toBe('');
    expect(s.code).toBe(0);
    expect(s.stdout).toContain('scheduled greet from template hello (created)');

    const e = await c.client(['execute', 'greet']);
    expect(e.code).toBe(0);
    const consoles: Record<string, string> = {};
    for (const ref of ['greet/1', 'greet/2']) {
      await waitFor(async () => (await c.run(ref)).state === 'succeeded', `${ref} to succeed`);
      const run = JSON.parse((await c.client(['info', ref, '--json'])).stdout) as {
        platform: string;
        worker: string;
        script: string;
      };
      const observed = await c.client(['observe', ref]);
      expect(observed.code).toBe(0);
      consoles[run.platform] = observed.stdout;
      const family = run.platform.split('-')[0];
      expect(run.script).toBe(`echo "${family}.sh on ${run.platform} says hi there"\n`);
      expect(run.worker).toBe(run.platform === 'debian-12' ? 'deb' : 'bsd');
    }
    expect(consoles).toEqual({
      'debian-12': 'debian.sh on debian-12 says hi there\n',
      'freebsd-14': 'freebsd.sh on freebsd-14 says hi there\n',
    });

    const job = JSON.parse((await c.client(['info', 'greet', '--json'])).stdout) as {
      job: { template: unknown; scripts: Record<string, string> };
    };
    expect(job.job.template).toEqual({ name: 'hello', vars: { GREETING: 'hi there' } });
    expect(Object.keys(job.job.scripts).sort()).toEqual(['debian-12', 'freebsd-14']);
    const text = await c.client(['info', 'greet']);
    expect(text.stdout).toMatch(/template: +hello GREETING=hi there/);
    expect(text.stdout).toContain('Script (freebsd-14):\necho "freebsd.sh on freebsd-14 says hi there"');

    // only one platform on demand: that platform's script
    await c.client(['execute', 'greet', '--platform', 'freebsd-14']);
    await waitFor(async () => (await c.run('greet/3')).state === 'succeeded', 'greet/3 to succeed');
    expect((await c.client(['observe', 'greet/3'])).stdout).toBe('freebsd.sh on freebsd-14 says hi there\n');
  });

  it('--platform all builds for every known platform the template has a file for', async () => {
    // a third worker whose platform no file of the template covers
    c.startWorker('arch', { platform: 'arch-rolling' });
    await c.waitForWorkers('arch');
    const s = await c.client([
      'schedule',
      'everywhere',
      '--platform',
      'all',
      '--template',
      'hello',
      '--templates-dir',
      templates,
      '--var',
      'GREETING=yo',
      '--json',
    ]);
    expect(s.stderr).toBe('');
    expect(s.code).toBe(0);
    expect((JSON.parse(s.stdout) as { job: { platforms: string[] } }).job.platforms).toEqual([
      'debian-12',
      'freebsd-14',
    ]);
    const plain = await c.client(['schedule', 'nope', '--platform', 'all', '--script', c.script('nope.sh', 'true')]);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/--platform all needs --template/);
  });

  it('a missing or unknown variable is exit 2 with one line, and nothing is stored', async () => {
    const missing = await schedule('no-var');
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain(
      `template variable GREETING is not set: ${join(templates, 'hello', 'debian.sh')}:1 uses it`,
    );

    const unknown = await schedule('extra-var', '--var', 'GREETING=hi', '--var', 'COLOUR=red');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toContain(
      `template variable COLOUR is not used by ${join(templates, 'hello', 'debian.sh')}, ${join(templates, 'hello', 'freebsd.sh')}`,
    );

    const noFile = await c.client([
      'schedule',
      'alpine',
      '--platform',
      'alpine-3',
      '--template',
      'hello',
      '--templates-dir',
      templates,
      '--var',
      'GREETING=hi',
    ]);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain('no file for platform alpine-3 (looked for alpine-3.sh, alpine.sh, default.sh');

    const both = await schedule('both', '--var', 'GREETING=hi', '--script', c.script('x.sh', 'true'));
    expect(both.code).toBe(2);

    const names = await jobNames();
    for (const n of ['no-var', 'extra-var', 'alpine', 'both']) expect(names).not.toContain(n);
  });

  it('replacing a templated job with a plain script drops the per-platform scripts', async () => {
    expect((await schedule('swap', '--var', 'GREETING=first')).code).toBe(0);
    const plain = await c.client([
      'schedule',
      'swap',
      '--platform',
      'debian-12,freebsd-14',
      '--script',
      c.script('swap.sh', 'echo plain on $BUILDER_PLATFORM\n'),
    ]);
    expect(plain.code).toBe(0);
    const job = JSON.parse((await c.client(['info', 'swap', '--json'])).stdout) as {
      job: { template: unknown; script?: string; scripts?: unknown };
    };
    expect(job.job).toMatchObject({ template: null, script: 'echo plain on $BUILDER_PLATFORM\n' });
    expect(job.job.scripts).toBeUndefined();
    await c.client(['execute', 'swap', '--platform', 'freebsd-14']);
    await waitFor(async () => (await c.run('swap/1')).state === 'succeeded', 'swap/1 to succeed');
    expect((await c.client(['observe', 'swap/1'])).stdout).toBe('plain on freebsd-14\n');
  });

  it('renders the shipped templates by default', async () => {
    const r = await c.client([
      'schedule',
      'hello-deb',
      '--platform',
      'debian-12',
      '--template',
      'deb-from-git',
      '--source-git',
      'https://example.org/hello.git',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const job = JSON.parse((await c.client(['info', 'hello-deb', '--json'])).stdout) as {
      job: { scripts: Record<string, string>; prepares: Record<string, string> };
    };
    expect(job.job.scripts['debian-12']).toContain('dpkg-buildpackage -b -us -uc');
    // the template's prepare part (debian.prepare.sh) is the job's prepare step
    expect(job.job.prepares['debian-12']).toContain('apt-get -q -y --no-install-recommends');
  });
});
