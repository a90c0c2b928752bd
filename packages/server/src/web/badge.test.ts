import { describe, expect, it } from 'vitest';
import { badgeStatus, renderBadge } from './badge.ts';

describe('badge', () => {
  it('maps run states to passing / failing / running / unknown', () => {
    expect(badgeStatus('succeeded')).toBe('passing');
    for (const s of ['failed', 'timeout', 'lost', 'error'] as const) expect(badgeStatus(s)).toBe('failing');
    expect(badgeStatus('running')).toBe('running');
    expect(badgeStatus('assigned')).toBe('running');
    expect(badgeStatus(undefined)).toBe('unknown');
  });

  it('is an SVG with the label and status as text, escaped, and no style', () => {
    const svg = renderBadge('nightly<&>', 'failing');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="\d+" height="20"/);
    expect(svg).toContain('<text x="');
    expect(svg).toContain('>nightly&lt;&amp;&gt;</text>');
    expect(svg).toContain('>failing</text>');
    expect(svg).toContain('#c62828');
    expect(svg).not.toContain('style');
    expect(svg).not.toContain('<script');
  });

  it('grows with its text', () => {
    const width = (s: string) => Number(/width="(\d+)"/.exec(s)![1]);
    expect(width(renderBadge('a-much-longer-job-name', 'passing'))).toBeGreaterThan(width(renderBadge('a', 'passing')));
  });
});
