import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DEBIAN = fileURLToPath(new URL('../debian/', import.meta.url));
const hasPromtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;

// test/metrics.test.ts checks that every metric these rules use is in a real server's /metrics
describe.skipIf(!hasPromtool)('debian/alerts.rules.yml with the real promtool (Debian prometheus)', () => {
  it('passes promtool check rules', () => {
    const out = execFileSync('promtool', ['check', 'rules', 'alerts.rules.yml'], { cwd: DEBIAN, encoding: 'utf8' });
    expect(out).toContain('SUCCESS: 6 rules found');
  });

  it('fires as its unit tests expect (promtool test rules)', () => {
    const r = spawnSync('promtool', ['test', 'rules', 'alerts.rules.test.yml'], { cwd: DEBIAN, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });
});
