// Shared by the demo and the benchmarks: the built programs, tokens, and a server process on a
// free loopback port whose URL is read from its first line.
import { execFileSync, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');

/** Path of `builder-server`, `builder-worker` or `builder-client`. */
export const bin = (name) => join(root, 'packages', name, 'bin', `builder-${name}.js`);

/** A new token with `role` in the data dir `data`; a worker token is for the worker(s) `name` names. */
export function createToken(data, role, name) {
  const args = [bin('server'), 'token', 'create', '--data-dir', data, '--role', role];
  if (name !== undefined) args.push('--name', name);
  return execFileSync(process.execPath, args).toString().trim();
}

/** Start `builder-server` on 127.0.0.1:0 with `data`; resolves with the process and its URL. */
export async function startServerProcess(data, nodeFlags = []) {
  const server = spawn(process.execPath, [...nodeFlags, bin('server'), '--data-dir', data, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const url = await new Promise((ok, fail) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) ok(m[1]);
    });
    server.on('exit', (code) => fail(new Error(`builder-server exited with ${code}`)));
  });
  return { server, url };
}
