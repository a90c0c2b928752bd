/**
 * Certificates made with the real `openssl` for TLS tests, and the real nginx from Debian in front
 * of builder-server with the shipped site `debian/nginx.conf`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { waitFor } from './harness.ts';

const root = resolve(import.meta.dirname, '..');
export const NGINX = '/usr/sbin/nginx';
export const haveNginx = existsSync(NGINX);
/** Every TLS test makes its certificates with openssl. */
export const haveOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

export interface Ca {
  readonly cert: string;
  readonly key: string;
}

export interface ServerCert {
  readonly cert: string;
  readonly key: string;
}

/** `openssl req` arguments for a new P-256 key, unencrypted. */
const NEW_EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A private CA: `DIR/NAME.pem` and its key. */
export function makeCa(dir: string, name: string): Ca {
  mkdirSync(dir, { recursive: true });
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  openssl(
    [
      'req',
      '-x509',
      ...NEW_EC_KEY,
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { cert, key };
}

/** A server certificate for 127.0.0.1 and localhost signed by `ca`: `DIR/NAME.pem` (leaf only) and its key. */
export function makeServerCert(dir: string, ca: Ca, name: string): ServerCert {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n',
  );
  openssl(['req', '-new', ...NEW_EC_KEY, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      ext,
      '-out',
      cert,
    ],
    dir,
  );
  return { cert, key };
}

/** An HTTPS GET trusting `ca`: status and body. */
export function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    request(url, { ca: readFileSync(ca) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
      res.on('error', fail);
    })
      .on('error', fail)
      .end();
  });
}

/** A port free on 127.0.0.1 right now (for nginx, which cannot be told to pick one). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((ok) => server.close(() => ok()));
  return port;
}

export interface NginxOptions {
  /** Where the config, pid, logs and temp dirs go. */
  dir: string;
  /** builder-server's port (the upstream). */
  upstreamPort: number;
  cert: ServerCert;
  /** The CA clients trust, to check that nginx answers. */
  ca: string;
  /** Changes an operator might make to the shipped site: [from, to] text replacements. */
  edits?: readonly (readonly [string, string])[];
}

/**
 * The real nginx, in the foreground, with the shipped `debian/nginx.conf` as its only site: the
 * lines marked EDIT set to this test's upstream, port and certificate, included into a minimal
 * main config whose pid, logs and temp dirs are in `dir`.
 */
export class Nginx {
  readonly port: number;
  readonly url: string;
  #child: ReturnType<typeof spawn> | undefined;
  #exited: Promise<void> = Promise.resolve();
  #log = '';

  private constructor(
    private readonly o: NginxOptions,
    port: number,
  ) {
    this.port = port;
    this.url = `https://127.0.0.1:${port}`;
  }

  static async start(o: NginxOptions): Promise<Nginx> {
    const nginx = new Nginx(o, await freePort());
    nginx.#writeConfig();
    await nginx.start();
    return nginx;
  }

  #writeConfig(): void {
    const { dir } = this.o;
    mkdirSync(dir, { recursive: true });
    let site = readFileSync(join(root, 'debian/nginx.conf'), 'utf8');
    const edit = (from: string, to: string) => {
      if (!site.includes(from)) throw new Error(`debian/nginx.conf has no "${from}" to edit`);
      site = site.split(from).join(to);
    };
    edit('server 127.0.0.1:8330;', `server 127.0.0.1:${this.o.upstreamPort};`);
    edit('listen 443 ssl;', `listen 127.0.0.1:${this.port} ssl;`);
    edit('/etc/ssl/builder/fullchain.pem', this.o.cert.cert);
    edit('/etc/ssl/builder/privkey.pem', this.o.cert.key);
    for (const [from, to] of this.o.edits ?? []) edit(from, to);
    writeFileSync(join(dir, 'site.conf'), site);
    const temp = (name: string) => join(dir, 'temp', name);
    writeFileSync(
      join(dir, 'nginx.conf'),
      [
        'daemon off;',
        // as root nginx's workers would otherwise run as nobody, who cannot enter the temp dir
        ...(process.getuid?.() === 0 ? ['user root;'] : []),
        'worker_processes 1;',
        `pid ${join(dir, 'nginx.pid')};`,
        `error_log ${join(dir, 'error.log')} info;`,
        'worker_shutdown_timeout 10s;',
        'events { worker_connections 256; }',
        'http {',
        `  access_log ${join(dir, 'access.log')};`,
        `  client_body_temp_path ${temp('body')};`,
        `  proxy_temp_path ${temp('proxy')};`,
        `  fastcgi_temp_path ${temp('fastcgi')};`,
        `  uwsgi_temp_path ${temp('uwsgi')};`,
        `  scgi_temp_path ${temp('scgi')};`,
        `  include ${join(dir, 'site.conf')};`,
        '}',
        '',
      ].join('\n'),
    );
  }

  /** Start (again, on the same port) and wait until it answers over TLS. */
  async start(): Promise<void> {
    const { dir } = this.o;
    mkdirSync(join(dir, 'temp'), { recursive: true });
    const child = spawn(NGINX, ['-c', join(dir, 'nginx.conf'), '-p', dir, '-e', join(dir, 'error.log')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    child.stdout.on('data', (d) => (this.#log += d));
    child.stderr.on('data', (d) => (this.#log += d));
    let gone = false;
    this.#exited = new Promise((ok) => child.on('exit', () => ((gone = true), ok())));
    await waitFor(
      async () => {
        if (gone) throw new Error(`nginx exited:\n${this.#log}\n${this.errorLog()}`);
        try {
          await httpsGet(`${this.url}/healthz`, this.o.ca);
          return true;
        } catch {
          return false;
        }
      },
      'nginx to answer',
      60_000,
    );
  }

  /** Fast shutdown (SIGTERM): every proxied connection is cut, as by a crash or restart of the proxy. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await this.#exited;
  }

  errorLog(): string {
    const file = join(this.o.dir, 'error.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }
}
