import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { candidateFiles, defaultTemplatesDir, expandTemplate } from './expand.ts';
import { parseTemplate, substitute, TemplateError } from './render.ts';

const render = (source: string, vars: Record<string, string>) => substitute(parseTemplate(source, 't.sh'), vars);

const failure = async (p: Promise<unknown>): Promise<TemplateError> => {
  try {
    await p;
  } catch (error) {
    if (error instanceof TemplateError) return error;
    throw error;
  }
  throw new Error('expected a TemplateError');
};

describe('placeholders', () => {
  it('substitutes {{NAME}} and {{ NAME }} and leaves the rest alone', () => {
    const r = render('a={{A}} b={{ B }} c={{\tA\t}} ${X} } { }}\n', { A: '1', B: 'two words' });
    expect(r.text).toBe('a=1 b=two words c=1 ${X} } { }}\n');
    expect([...r.used].sort()).toEqual(['A', 'B']);
    expect(r.missing).toEqual([]);
  });

  it('inserts values verbatim, placeholders in values are not expanded again', () => {
    expect(render('{{A}}{{B}}', { A: '{{B}}', B: '$x' }).text).toBe('{{B}}$x');
  });

  it('reports each missing variable once, with the line of its first use', () => {
    const r = render('x\n{{A}}\n{{B}} {{A}}\n', { B: 'b' });
    expect(r.missing).toEqual([{ name: 'A', line: 2 }]);
  });

  it('writes \\{{ as a literal {{', () => {
    expect(render("docker inspect -f '\\{{.Id}}' {{C}}", { C: 'c1' }).text).toBe("docker inspect -f '{{.Id}}' c1");
  });

  it.each([
    ['echo {{.Id}}', /t\.sh:1: "{{\.Id}}" is not a placeholder: .* \(write \\\{\{ for a literal "\{\{"\)$/],
    ['\n\necho {{ repo }}', /t\.sh:3: "{{ repo }}" is not a placeholder: variable names are A-Z/],
    ['{{1X}}', /is not a placeholder/],
    ['{{A', /does not open a placeholder/],
    ['{{A B}}', /does not open a placeholder/],
  ])('refuses %j', (source, message) => {
    expect(() => parseTemplate(source, 't.sh')).toThrow(message);
  });
});

describe('platform file lookup', () => {
  it('tries the exact name, each shorter prefix at "-", then default', () => {
    expect(candidateFiles('debian-12')).toEqual(['debian-12.sh', 'debian.sh', 'default.sh']);
    expect(candidateFiles('debian-12-arm64')).toEqual([
      'debian-12-arm64.sh',
      'debian-12.sh',
      'debian.sh',
      'default.sh',
    ]);
    expect(candidateFiles('freebsd-14.1')).toEqual(['freebsd-14.1.sh', 'freebsd.sh', 'default.sh']);
    expect(candidateFiles('alpine')).toEqual(['alpine.sh', 'default.sh']);
  });
});

describe('expandTemplate', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'builder-templates-'));
    const t = join(dir, 'build');
    await mkdir(t);
    await writeFile(join(t, 'debian-12.sh'), 'echo exact {{PLATFORM}} {{A}}\n');
    await writeFile(join(t, 'debian.sh'), 'echo family {{PLATFORM}} {{A}}\n');
    await writeFile(join(t, 'default.sh'), 'echo default {{PLATFORM}} {{ A }} {{B}}\n');
    await symlink('debian.sh', join(t, 'ubuntu.sh'));
    await mkdir(join(t, 'freebsd.sh')); // a directory is not a template file
    await mkdir(join(dir, 'nodefault'));
    await writeFile(join(dir, 'nodefault', 'debian.sh'), 'echo {{A}}\n');
    await mkdir(join(dir, 'empty'));
    await writeFile(join(dir, 'empty', 'default.sh'), '\n');
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('renders each platform from its best file', async () => {
    const r = await expandTemplate({
      dir,
      name: 'build',
      platforms: ['debian-12', 'debian-11', 'ubuntu-24.04', 'freebsd-14'],
      vars: { A: 'a', B: 'b' },
    });
    expect(r.scripts).toEqual({
      'debian-12': 'echo exact debian-12 a\n',
      'debian-11': 'echo family debian-11 a\n',
      'ubuntu-24.04': 'echo family ubuntu-24.04 a\n',
      'freebsd-14': 'echo default freebsd-14 a b\n',
    });
    expect(r.files['debian-11']).toBe(join(dir, 'build', 'debian.sh'));
    expect(r.files['freebsd-14']).toBe(join(dir, 'build', 'default.sh'));
  });

  it('a placeholder without a value is an error naming the variable and the file', async () => {
    const e = await failure(expandTemplate({ dir, name: 'build', platforms: ['freebsd-14'], vars: { A: 'a' } }));
    expect(e.kind).toBe('missing-variable');
    expect(e.message).toBe(
      `template variable B is not set: ${join(dir, 'build', 'default.sh')}:1 uses it (pass --var B=VALUE)`,
    );
  });

  it('a variable no rendered file uses is an error naming it and the files', async () => {
    // B is used by default.sh, but no platform here renders that file
    const e = await failure(
      expandTemplate({ dir, name: 'build', platforms: ['debian-12', 'debian-11'], vars: { A: 'a', B: 'b' } }),
    );
    expect(e.kind).toBe('unknown-variable');
    expect(e.message).toBe(
      `template variable B is not used by ${join(dir, 'build', 'debian-12.sh')}, ${join(dir, 'build', 'debian.sh')}`,
    );
  });

  it('a platform without a file is an error listing the files looked for', async () => {
    const e = await failure(expandTemplate({ dir, name: 'nodefault', platforms: ['freebsd-14'], vars: { A: 'a' } }));
    expect(e.kind).toBe('no-file');
    expect(e.message).toBe(
      `template nodefault has no file for platform freebsd-14 (looked for freebsd-14.sh, freebsd.sh, default.sh in ${join(dir, 'nodefault')})`,
    );
  });

  it('refuses bad and built-in variable names, unknown templates and empty files', async () => {
    const base = { dir, name: 'build', platforms: ['debian-12'] };
    expect((await failure(expandTemplate({ ...base, vars: { a: '1' } }))).message).toMatch(/invalid template variable/);
    expect((await failure(expandTemplate({ ...base, vars: { PLATFORM: 'x', A: 'a' } }))).message).toMatch(
      /PLATFORM is set for each platform/,
    );
    const missing = await failure(expandTemplate({ ...base, name: 'nope', vars: {} }));
    expect(missing.message).toBe(`no template nope in ${dir} (there: build, empty, nodefault)`);
    expect((await failure(expandTemplate({ ...base, name: '../x', vars: {} }))).message).toMatch(
      /invalid template name/,
    );
    expect((await failure(expandTemplate({ ...base, dir: join(dir, 'none'), vars: {} }))).message).toMatch(
      /no templates directory/,
    );
    expect((await failure(expandTemplate({ ...base, name: 'empty', vars: {} }))).message).toMatch(/is empty/);
  });
});

describe('the shipped templates', () => {
  // every shipped template needs an entry here, so a new one is rendered and syntax-checked too
  const samples: Record<string, { platforms: string[]; vars: Record<string, string> }> = {
    'deb-from-git': {
      platforms: ['debian-12', 'debian-13', 'ubuntu-24.04'],
      vars: {},
    },
    'freebsd-pkg': { platforms: ['freebsd-14', 'freebsd-15'], vars: { ORIGIN: 'sysutils/tmux', PORTS_REF: '2025Q2' } },
  };

  it('all have sample variables in this test', async () => {
    const entries = await readdir(defaultTemplatesDir(), { withFileTypes: true });
    const names = entries.filter((e) => e.isDirectory()).map((e) => e.name);
    expect(names.sort()).toEqual(Object.keys(samples).sort());
  });

  it.each(Object.entries(samples))('%s renders to scripts that sh -n accepts', async (name, sample) => {
    const r = await expandTemplate({ dir: defaultTemplatesDir(), name, ...sample });
    for (const platform of sample.platforms) {
      const script = r.scripts[platform]!;
      expect(script).not.toContain('{{');
      for (const value of Object.values(sample.vars)) expect(script).toContain(value);
      execFileSync('sh', ['-n'], { input: script });
      const prepare = r.prepares[platform];
      if (prepare !== undefined) {
        expect(prepare).not.toContain('{{');
        execFileSync('sh', ['-n'], { input: prepare });
      }
    }
  });
});
