/** Real git repositories for the source tests: made in a temp dir, served by `git daemon` on loopback. */
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** `git ARGS` in `cwd` with a committer identity; its trimmed stdout. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, encoding: 'utf8' }).trim();
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/**
 * `git daemon` exporting every repository under `base` on 127.0.0.1; resolves once `name` answers
 * with its URL. The caller stops it (in its cleanup, also when the test fails).
 */
export async function gitDaemon(base: string, name: string): Promise<{ url: string; stop(): void }> {
  const port = await freePort();
  const daemon = spawn(
    'git',
    ['daemon', '--export-all', `--base-path=${base}`, '--listen=127.0.0.1', `--port=${port}`, '--reuseaddr', base],
    { stdio: 'ignore' },
  );
  const stop = () => void daemon.kill('SIGKILL');
  const url = `git://127.0.0.1:${port}/${name}`;
  for (let i = 0; i < 200; i++) {
    try {
      execFileSync('git', ['ls-remote', url], { stdio: 'ignore' });
      return { url, stop };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  stop();
  throw new Error('git daemon did not start');
}

/** Loose objects in a (mirror) repository: what the last fetches brought. */
export function looseObjects(gitDir: string): number {
  const out = execFileSync('git', ['--git-dir', gitDir, 'count-objects', '-v'], { encoding: 'utf8' });
  return Number(/^count: (\d+)$/m.exec(out)?.[1]);
}
