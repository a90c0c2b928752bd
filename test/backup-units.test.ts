import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, Cluster } from './harness.ts';

const debian = resolve(import.meta.dirname, '../debian');

/** `Key=value` settings of a unit file's [Service] (or any) section, in order; repeated keys kept. */
function settings(file: string): [string, string][] {
  return readFileSync(join(debian, file), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}

/** systemd's expansion of an ExecStart line: `${VAR}` is one word, `$VAR` splits at whitespace. */
function expand(line: string, env: Record<string, string>): string[] {
  return line.split(/\s+/).flatMap((word) => {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (whole) return (env[whole[1]!] ?? '').split(/\s+/).filter(Boolean);
    return [
      word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
        if (!(name in env)) throw new Error(`ExecStart uses \${${name}}, which nothing sets`);
        return env[name]!;
      }),
    ];
  });
}

/** The environment the unit gives its command: Environment=, then the EnvironmentFile (debian/*.default). */
function unitEnv(unit: [string, string][]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of unit) {
    if (k === 'Environment') env[v.slice(0, v.indexOf('='))] = v.slice(v.indexOf('=') + 1);
  }
  for (const [k, v] of unit) {
    if (k !== 'EnvironmentFile') continue;
    const shipped = join(debian, `${v.replace(/^-/, '').split('/').pop()!}.default`);
    for (const line of readFileSync(shipped, 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line);
      if (m) env[m[1]!] = m[2]!;
    }
  }
  return env;
}

describe('debian/builder-backup.service and .timer', () => {
  let c: Cluster;
  let bin: string;
  beforeAll(async () => {
    c = await Cluster.start();
    await c.client(['schedule', 'nightly', '--platform', 'debian-12', '--script', c.script('n.sh', 'echo hi')]);
    // what the package installs: builder-server on the PATH
    bin = join(c.dir, 'bin');
    mkdirSync(bin);
    symlinkSync(BIN.server, join(bin, 'builder-server'));
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('runs its ExecStart line as shipped (paths substituted) against a running server', () => {
    const unit = settings('builder-backup.service');
    const exec = unit.filter(([k]) => k === 'ExecStart').map(([, v]) => v);
    expect(exec).toHaveLength(1);
    const shipped = unitEnv(unit);
    expect(shipped.BUILDER_DATA_DIR).toBe('/var/lib/builder');
    expect(shipped.BUILDER_BACKUP_DIR).toBe('/var/backups/builder/latest');
    const to = join(c.dir, 'backups', 'latest');
    const env = { ...shipped, BUILDER_DATA_DIR: c.dataDir, BUILDER_BACKUP_DIR: to };
    const [cmd, ...args] = expand(exec[0]!, env);
    expect(cmd).toBe('/usr/bin/env');
    expect(args.slice(0, 2)).toEqual(['builder-server', 'backup']);
    const run = () =>
      spawnSync(cmd!, args, { env: { ...process.env, ...env, PATH: `${bin}:${process.env.PATH}` }, encoding: 'utf8' });
    const first = run();
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/database: 1 jobs, 0 runs/);
    expect(JSON.parse(readFileSync(join(to, 'manifest.json'), 'utf8')).database.jobs).toBe(1);
    // the timer runs it again each night: the same DIR, replaced
    const second = run();
    expect(second.status, second.stderr).toBe(0);
    // with an S3 store the extra options go in BUILDER_BACKUP_ARGS, split into words
    expect(
      expand(exec[0]!, { ...env, BUILDER_BACKUP_ARGS: '--artifacts s3://b/p --s3-endpoint http://x' }).slice(-4),
    ).toEqual(['--artifacts', 's3://b/p', '--s3-endpoint', 'http://x']);
    // the directories it may write are the ones it writes
    expect(unit.find(([k]) => k === 'ReadWritePaths')?.[1]).toBe('/var/lib/builder -/var/backups/builder');
  });

  it('the timer starts the service', () => {
    const timer = settings('builder-backup.timer');
    expect(timer.find(([k]) => k === 'OnCalendar')?.[1]).toBeDefined();
    expect(timer.find(([k]) => k === 'Unit')).toBeUndefined(); // same name: builder-backup.service
    expect(existsSync(join(debian, 'builder-backup.service'))).toBe(true);
  });

  const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
  it.skipIf(!analyze)('systemd-analyze verify accepts both units', () => {
    const dir = mkdtempSync(join(tmpdir(), 'builder-units-'));
    try {
      for (const f of ['builder-backup.service', 'builder-backup.timer']) {
        execFileSync('cp', [join(debian, f), dir]);
      }
      const r = spawnSync('systemd-analyze', ['verify', 'builder-backup.service', 'builder-backup.timer'], {
        cwd: dir,
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
