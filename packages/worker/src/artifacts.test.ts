import { createLogger } from '@builder/protocol';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { uploadOutput, type ArtifactTarget } from './artifacts.ts';

/** A server whose disk is full for the first `fullFor` questions, then answers the transfer with `put`. */
function server(fullFor: number, put = 200): Promise<{ srv: Server; base: string; asked: () => number }> {
  let asked = 0;
  const srv = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const json = (code: number, body: object) =>
        res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.url === '/blobs/missing') {
        asked++;
        if (asked <= fullFor) return json(507, { ok: false, code: 'STORAGE_FULL', error: "the server's disk is full" });
        return json(200, { missing: [] }); // it has the bytes: the transfer is the manifest alone
      }
      if (put !== 200) return json(put, { ok: false, code: 'INTERNAL', error: 'broken' });
      json(200, { ok: true, files: 1, bytes: 6, sent: 0, stored: 0 });
    });
  });
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () =>
      resolve({ srv, base: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, asked: () => asked }),
    ),
  );
}

describe('uploadOutput when the server has no room', () => {
  let dir: string;
  let srv: Server | undefined;
  const notes: string[] = [];
  const io = { note: (t: string) => notes.push(t), log: createLogger({ json: true, write: () => undefined }) };
  const target = (base: string): ArtifactTarget => ({
    base,
    token: 't',
    attempts: 2,
    retryBaseMs: 1,
    retryMaxMs: 5,
    fullWaitMs: 60_000,
  });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'builder-upload-'));
    writeFileSync(join(dir, 'out.txt'), 'built\n');
    notes.length = 0;
  });
  afterEach(async () => {
    await new Promise((r) => (srv ? srv.close(r) : r(undefined)));
    srv = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps retrying a 507 past its attempts until the server takes the files', async () => {
    const s = await server(6);
    srv = s.srv;
    const problem = await uploadOutput(dir, { runId: 'r', attempt: 1 }, target(s.base), io);
    expect(problem).toBeUndefined();
    expect(s.asked()).toBe(7);
    expect(notes.filter((n) => n.includes("sending artifacts failed (the server's disk is full)"))).toHaveLength(6);
  });

  it('gives up on other server errors after its attempts', async () => {
    const s = await server(0, 503);
    srv = s.srv;
    const problem = await uploadOutput(dir, { runId: 'r', attempt: 1 }, target(s.base), io);
    expect(problem).toBe('cannot send the artifacts: broken');
    expect(s.asked()).toBe(2);
  });
});
