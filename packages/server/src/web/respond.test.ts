import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { wantsJson } from './respond.ts';

const req = (accept?: string) => ({ headers: accept === undefined ? {} : { accept } }) as IncomingMessage;
const u = (path: string) => new URL(path, 'http://x');

describe('content negotiation', () => {
  it('answers JSON under /api/ whatever the Accept header', () => {
    expect(wantsJson(req(), u('/api/'))).toBe(true);
    expect(wantsJson(req('text/html'), u('/api/job/x'))).toBe(true);
    expect(wantsJson(req(), u('/api'))).toBe(true);
    expect(wantsJson(req(), u('/apiary'))).toBe(false);
  });

  it('answers JSON when Accept prefers it, HTML for browsers and by default', () => {
    expect(wantsJson(req('application/json'), u('/'))).toBe(true);
    expect(wantsJson(req('application/json, text/plain, */*'), u('/'))).toBe(true);
    expect(wantsJson(req('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'), u('/'))).toBe(false);
    expect(wantsJson(req('text/html;q=0.5, application/json'), u('/'))).toBe(true);
    expect(wantsJson(req('application/json;q=0.1, text/html'), u('/'))).toBe(false);
    expect(wantsJson(req('*/*'), u('/'))).toBe(false);
    expect(wantsJson(req(), u('/'))).toBe(false);
  });
});
