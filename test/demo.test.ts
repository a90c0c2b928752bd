/**
 * The README's first command (`pnpm demo` = `tsc -b && node scripts/demo.mjs`) run as a user runs
 * it: a server, a local worker and a job that builds, its result shown, everything stopped again.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { REPO } from '../packages/worker/src/test-support/chroot-root.ts';

it('pnpm demo builds a job, shows its run, artifact and page, and exits 0', async () => {
  // its own process group: whatever happens, the demo and what it started end with the test
  const demo = spawn(process.execPath, [join(REPO, 'scripts/demo.mjs')], {
    cwd: REPO,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  demo.stdout.on('data', (d: Buffer) => (out += d.toString()));
  demo.stderr.on('data', (d: Buffer) => (out += d.toString()));
  try {
    const code = await new Promise<number | null>((resolve) => demo.once('exit', resolve));
    expect(code, out).toBe(0);
    expect(out).toMatch(/hello\/1 on demo: exited 0 \(succeeded\)/);
    expect(out).toMatch(/hello\.txt +\d+ +[0-9a-f]{64}/);
    expect(out).toMatch(/GET http:\/\/127\.0\.0\.1:\d+\/job\/hello\/run\/1 → 200/);
    expect(out).toContain('badge: passing');
  } finally {
    try {
      process.kill(-demo.pid!, 'SIGKILL');
    } catch {
      // already gone with its children
    }
  }
}, 60_000);
