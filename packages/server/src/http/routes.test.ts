import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Context } from '../context.ts';
import { handleHttp, ROUTES, type Route } from './routes.ts';

const seen: { name: string; params: readonly string[] }[] = [];
const answer =
  (name: string): Route['handle'] =>
  (_ctx, _req, res, _url, params) => {
    seen.push({ name, params });
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`${name}\n`);
  };
const TABLE: Route[] = [
  { methods: ['PUT'], path: /^\/upload\/([^/]+)$/, handle: answer('upload') },
  { methods: ['GET', 'HEAD'], path: /^\/job\/([^/]+)\/run\/([^/]+)$/, handle: answer('run') },
  { methods: ['GET', 'HEAD'], path: /^\/job\/([^/]+)$/, handle: answer('job') },
];

let server: Server;
let base: string;
beforeAll(async () => {
  const ctx = { version: 'test' } as unknown as Context;
  server = createServer((req, res) => handleHttp(ctx, req, res, TABLE));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

describe('handleHttp', () => {
  it('calls the first route whose pattern matches, with its captures still encoded', async () => {
    seen.length = 0;
    expect(await (await fetch(`${base}/job/a%2Db/run/7`)).text()).toBe('run\n');
    expect(await (await fetch(`${base}/upload/x`, { method: 'PUT', body: '' })).text()).toBe('upload\n');
    expect(seen).toEqual([
      { name: 'run', params: ['a%2Db', '7'] },
      { name: 'upload', params: ['x'] },
    ]);
  });

  it("answers 405 with the route's methods when the path matches and the method does not", async () => {
    const put = await fetch(`${base}/job/a`, { method: 'PUT', body: '' });
    expect([put.status, put.headers.get('allow'), await put.text()]).toEqual([
      405,
      'GET, HEAD',
      'method not allowed\n',
    ]);
    const get = await fetch(`${base}/upload/x`);
    expect([get.status, get.headers.get('allow')]).toEqual([405, 'PUT']);
  });

  it('answers 405 to writes and 404 to reads that no route takes; JSON under /api/', async () => {
    const post = await fetch(`${base}/nowhere`, { method: 'POST', body: '' });
    expect([post.status, post.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
    const get = await fetch(`${base}/nowhere`);
    expect([get.status, await get.text()]).toEqual([404, 'not found\n']);
    const api = await fetch(`${base}/api/nowhere`);
    expect([api.status, await api.json()]).toEqual([404, { error: 'no API endpoint /api/nowhere' }]);
    const bad = await fetch(`${base}/nowhere/%E0%A4%A`, { headers: { accept: 'application/json' } });
    expect([bad.status, await bad.json()]).toEqual([400, { error: 'malformed percent-encoding in the URL' }]);
  });
});

describe('the route table', () => {
  it('lists each route once, with its methods', () => {
    expect(ROUTES.every((r) => r.methods.length > 0)).toBe(true);
    expect(new Set(ROUTES.map((r) => r.path.source)).size).toBe(ROUTES.length);
  });
});
