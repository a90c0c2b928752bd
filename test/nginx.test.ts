/**
 * builder behind the real nginx from Debian (nginx-light), terminating TLS with a private CA made
 * by openssl here, configured by the shipped site `debian/nginx.conf`: a worker, the client, a
 * 50 MiB artifact and a console follow through it; `execute --follow` across a restart of the
 * proxy and of the server; a proxy's 413 and a wrong CA as the user sees them; keepalive pings
 * under the proxy's read timeout whatever the lease. Skipped without /usr/sbin/nginx.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, sleep, waitFor } from './harness.ts';
import {
  haveNginx,
  haveOpenssl,
  httpsGet,
  makeCa,
  makeServerCert,
  Nginx,
  NGINX,
  type Ca,
  type ServerCert,
} from './tls-support.ts';

const MiB = 1024 * 1024;
const numbered = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}\n`).join('');

/** Waits for each gate file in turn, printing two numbered lines after each. */
function gatedScript(dir: string, gates: number): string {
  let text = 'echo "line 1"\necho "line 2"\n';
  for (let g = 1; g <= gates; g++) {
    text += `while [ ! -e ${join(dir, `gate${g}`)} ]; do sleep 0.05; done\necho "line ${2 * g + 1}"\necho "line ${2 * g + 2}"\n`;
  }
  return text;
}

// real transfers of 50 MiB and restarts: slow on a loaded machine, so generous limits (no timing is asserted)
const LONG = 120_000;

describe.skipIf(!haveNginx || !haveOpenssl)(`behind nginx (${NGINX})`, { timeout: 5 * 60_000 }, () => {
  let c: Cluster | undefined;
  let nginx: Nginx | undefined;
  let pki: string | undefined;
  afterEach(async () => {
    await nginx?.stop();
    await c?.stop();
    if (pki !== undefined) rmSync(pki, { recursive: true, force: true });
    c = nginx = pki = undefined;
  });

  /** A server on loopback, nginx in front with the shipped site (plus `edits`), clients through nginx. */
  async function setup(
    opts: { serverArgs?: string[]; edits?: [string, string][] } = {},
  ): Promise<{ c: Cluster; nginx: Nginx; ca: Ca; cert: ServerCert; dir: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'builder-nginx-'));
    pki = dir;
    const ca = makeCa(dir, 'ca');
    const cert = makeServerCert(dir, ca, 'proxy');
    c = await Cluster.start(opts.serverArgs ?? []);
    nginx = await Nginx.start({
      dir: join(dir, 'nginx'),
      upstreamPort: c.port,
      cert,
      ca: ca.cert,
      ...(opts.edits && { edits: opts.edits }),
    });
    c.clientEnv = { BUILDER_REMOTE: nginx.url, BUILDER_CA: ca.cert };
    return { c, nginx, ca, cert, dir };
  }

  it('carries a worker, the client, a 50 MiB artifact and a live console follow', async () => {
    const { c, nginx, ca, dir } = await setup();
    c.startWorker('w1', { remote: nginx.url, args: ['--ca', ca.cert] });
    await c.waitForWorkers('w1');
    await c.schedule(
      'big',
      `${gatedScript(dir, 1)}head -c ${50 * MiB} /dev/zero | tr '\\0' 'x' > "$BUILDER_OUTPUT/big.bin"\necho done\n`,
    );
    expect((await c.client(['execute', 'big'])).code).toBe(0);

    // the raw console, followed through the proxy: lines arrive while the job waits (no buffering)
    let followed = '';
    let followEnded = false;
    const follow = request(`${nginx.url}/job/big/run/1/console.txt?follow=1`, { ca: readFileSync(ca.cert) }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d: string) => (followed += d));
      res.on('end', () => (followEnded = true));
    });
    follow.on('error', () => undefined);
    follow.end();
    await waitFor(() => followed.includes('line 2\n'), 'the first lines through the proxy while the job runs', LONG);
    expect(followEnded).toBe(false);
    writeFileSync(join(dir, 'gate1'), '');

    const watched = await c.client(['watch', 'big/1'], { timeoutMs: LONG });
    expect(watched.stdout).toContain('big/1: exited 0 (succeeded)');
    expect(watched.code).toBe(0);
    await waitFor(() => followEnded, 'the console follow to end with the run', LONG);
    const whole = await httpsGet(`${nginx.url}/job/big/run/1/console.txt`, ca.cert);
    expect(followed).toBe(whole.body);
    expect(whole.body).toContain(`${numbered(1, 4)}`);

    // the artifact, stored through the proxy, downloaded through it and checked
    const expected = createHash('sha256')
      .update(Buffer.alloc(50 * MiB, 'x'))
      .digest('hex');
    const listed = await c.client(['artifacts', 'big/1']);
    expect(listed.stdout).toBe(`big.bin  ${String(50 * MiB).padStart(12)}  ${expected}\n`);
    const down = join(dir, 'down');
    const got = await c.client(['artifacts', 'big/1', '--download', down], { timeoutMs: LONG });
    expect(got.stderr).toContain('saved to');
    expect(got.code).toBe(0);
    expect(
      createHash('sha256')
        .update(readFileSync(join(down, 'big.bin')))
        .digest('hex'),
    ).toBe(expected);

    // an upload of 50 MiB by the client
    const file = join(dir, 'upload.bin');
    writeFileSync(file, Buffer.alloc(50 * MiB, 'y'));
    const up = await c.client(['upload', 'big', file], { timeoutMs: LONG });
    expect(up.stderr).toContain('uploaded 1 files (52428800 bytes');
    expect(up.code).toBe(0);

    // the same file as a run's input: sent by the client and fetched by the worker through the proxy
    await c.schedule('digest', 'sha256sum "$BUILDER_INPUT/upload.bin"\n');
    const digest = await c.client(['execute', 'digest', '--input', file, '--follow'], { timeoutMs: LONG });
    expect(digest.code, digest.stderr).toBe(0);
    expect(digest.stdout).toContain(
      createHash('sha256')
        .update(Buffer.alloc(50 * MiB, 'y'))
        .digest('hex'),
    );

    // /metrics is not served to the public side
    expect((await httpsGet(`${nginx.url}/metrics`, ca.cert)).status).toBe(403);
  });

  it('execute --follow resumes across a proxy restart and a server restart: every line once, exit status of the run', async () => {
    const { c, nginx, ca, dir } = await setup();
    c.startWorker('w1', { remote: nginx.url, args: ['--ca', ca.cert] });
    await c.waitForWorkers('w1');
    await c.schedule('gated', gatedScript(dir, 3));
    const exec = c.clientProc(['execute', 'gated', '--follow']);
    await waitFor(() => exec.stdout().includes('line 2\n'), 'the console to start', LONG);

    // the proxy goes away (and the worker's and client's connections with it); the job goes on
    await nginx.stop();
    writeFileSync(join(dir, 'gate1'), '');
    await nginx.start();
    await waitFor(() => exec.stdout().includes('line 4\n'), 'the client to resume after the proxy restart', LONG);

    // the server goes away (kill -9): nginx answers 502 meanwhile, said in one line
    await c.killServer('SIGKILL');
    const down = await c.client(['info']);
    expect(down.stderr).toBe(
      `builder-client: cannot connect to ${nginx.url}: a proxy answered HTTP 502 (Bad Gateway), not builder-server: the proxy cannot reach builder-server: is it running, and does the proxy's upstream (nginx: proxy_pass) name its --listen address?\n`,
    );
    expect(down.code).toBe(4);
    writeFileSync(join(dir, 'gate2'), '');
    await c.startServer();
    await waitFor(() => exec.stdout().includes('line 6\n'), 'the client to resume after the server restart', LONG);
    writeFileSync(join(dir, 'gate3'), '');

    expect(await exec.exited, exec.output()).toBe(0);
    const [queued, ...rest] = exec.stdout().split('\n');
    expect(queued).toMatch(/^gated\/1 debian-12 queued [0-9a-f-]{36}$/);
    expect(rest.join('\n')).toBe(numbered(1, 8));
    expect(exec.output()).toContain('; retrying in ');
    expect(exec.output()).toContain('gated/1 on debian-12: exited 0 (succeeded)');
    expect(exec.output()).not.toContain('<html');
  });

  it("a proxy's 413 and a wrong CA: one line each, naming the setting or how to trust the CA", async () => {
    const { c, nginx, ca, dir } = await setup({
      // an operator's limit on the artifact routes, where the shipped site has none
      edits: [['client_max_body_size 0;', 'client_max_body_size 1m;']],
    });
    const proxy413 =
      'a proxy answered HTTP 413 (Payload Too Large), not builder-server: the request is larger than the proxy allows: lift its body limit for /artifacts/, /upload/, /inputs and /blobs/ (nginx: client_max_body_size 0; see debian/nginx.conf)';

    await c.schedule('files', 'head -c 3000000 /dev/zero > "$BUILDER_OUTPUT/three-mb.bin"\n');
    const file = join(dir, 'three-mb.bin');
    writeFileSync(file, Buffer.alloc(3_000_000));
    const up = await c.client(['upload', 'files', file]);
    expect(up.stderr).toBe(`builder-client: cannot upload to ${nginx.url}: ${proxy413}\n`);
    expect(up.code).toBe(4);

    // a worker's artifacts: the run's result says the same, without the proxy's page
    c.startWorker('w1', { remote: nginx.url, args: ['--ca', ca.cert] });
    await c.waitForWorkers('w1');
    const run = await c.client(['execute', 'files', '--follow']);
    expect(run.stderr).toContain(`files/1 on debian-12: error: artifacts refused: ${proxy413}`);
    expect(run.code).toBe(1);
    const info = await c.client(['info', 'files/1', '--json']);
    expect((JSON.parse(info.stdout) as { result: unknown }).result).toEqual({
      kind: 'error',
      message: `artifacts refused: ${proxy413}`,
    });

    // a CA the proxy's certificate is not from: exit 4 at once, with how to trust the right one
    const other = makeCa(dir, 'other');
    const wrong = await c.client(['watch', 'files/1'], { env: { BUILDER_CA: other.cert } });
    expect(wrong.stderr).toBe(
      `builder-client: the TLS certificate of ${nginx.url} was not accepted: it is signed by a CA this machine does not trust (UNABLE_TO_VERIFY_LEAF_SIGNATURE); if the server uses a private CA, pass --ca CA.pem or set NODE_EXTRA_CA_CERTS=CA.pem (the CA certificate, not the server key)\n`,
    );
    expect(wrong.code).toBe(4);
  });

  it('keepalive pings hold idle WebSockets open under a short proxy read timeout, whatever the lease', async () => {
    // lease 120 s: heartbeats only every 30 s, six times the proxy's read timeout on /ws
    const { c, nginx, ca, dir } = await setup({
      serverArgs: ['--lease', '120s', '--keepalive', '1s'],
      edits: [
        [
          'proxy_set_header Connection $builder_connection;\n        proxy_read_timeout 1h;',
          'proxy_set_header Connection $builder_connection;\n        proxy_read_timeout 5s;',
        ],
      ],
    });
    const w1 = c.startWorker('w1', { remote: nginx.url, args: ['--ca', ca.cert, '--keepalive', '1'] });
    await c.waitForWorkers('w1');
    await c.schedule('quiet', gatedScript(dir, 1));
    expect((await c.client(['execute', 'quiet'])).code).toBe(0);
    const watch = c.clientProc(['watch', '--logs', 'quiet/1']);
    await waitFor(() => watch.stdout().includes('line 2\n'), 'the job to start', LONG);
    // silent on every connection for more than two read timeouts
    await sleep(12_000);
    writeFileSync(join(dir, 'gate1'), '');
    expect(await watch.exited, watch.output()).toBe(0);
    expect(watch.output()).not.toContain('retrying');
    expect(w1.output().match(/connection\.connected/g)).toHaveLength(1);
    expect(w1.output()).not.toContain('connection.closed');
    expect(existsSync(join(dir, 'nginx', 'error.log'))).toBe(true);
  });
});
