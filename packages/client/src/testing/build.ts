import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Build this package so tests run the real binary. Skipped when the build is newer than every
 * source file: test files run in parallel, and two builds writing dist/ at once could race.
 */
export function buildClient(): void {
  if (isFresh()) return;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-b', root], { stdio: 'inherit' });
}

function isFresh(): boolean {
  let built: number;
  try {
    built = statSync(join(root, 'tsconfig.tsbuildinfo')).mtimeMs;
  } catch {
    return false;
  }
  return newestSource(join(root, 'src')) <= built;
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'testing') newest = Math.max(newest, newestSource(path));
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}
