/**
 * Integration-test harness: real builder-server / builder-worker / builder-client processes on
 * ephemeral ports with temp data dirs. Everything a test starts is killed by `stop()`.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
export const BIN = {
  server: join(root, 'packages/server/bin/builder-server.js'),
  worker: join(root, 'packages/worker/bin/builder-worker.js'),
  client: join(root, 'packages/client/bin/builder-client.js'),
};

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function track(child: ChildProcess): Proc {
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((ok) => child.on('exit', (code, sig) => ok(code ?? (sig ? 128 : null))));
  return { child, output: () => out, exited };
}

export class Cluster {
  readonly dir: string;
  readonly tokens: { admin: string; read: string; worker: string };
  url = '';
  port = 0;
  server: Proc | undefined;
  readonly workers = new Map<string, Proc>();
  private readonly procs = new Set<Proc>();

  constructor(private readonly serverArgs: string[] = []) {
    this.dir = mkdtempSync(join(tmpdir(), 'builder-it-'));
    // tokens.worker is a fleet token (any worker name); startWorker uses a token named for its worker
    this.tokens = { admin: this.token('admin'), read: this.token('read'), worker: this.token('worker', '*') };
  }

  /** A new token; a worker token is for the worker(s) `name` names (a name or a pattern). */
  token(role: string, name?: string): string {
    return execFileSync(process.execPath, [
      BIN.server,
      'token',
      'create',
      '--data-dir',
      this.dataDir,
      '--role',
      role,
      ...(name === undefined ? [] : ['--name', name]),
    ])
      .toString()
      .trim();
  }

  private readonly workerTokens = new Map<string, string>();

  /** The token made for worker `name` (made once, on first use). */
  workerToken(name: string): string {
    let t = this.workerTokens.get(name);
    if (t === undefined) this.workerTokens.set(name, (t = this.token('worker', name)));
    return t;
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  static async start(serverArgs: string[] = []): Promise<Cluster> {
    const c = new Cluster(serverArgs);
    await c.startServer();
    return c;
  }

  /**
   * Start (or restart) the server; reuses the previous port so workers can reconnect.
   * `maxFileBytes`: no file the server writes may grow past this (RLIMIT_FSIZE): writes fail
   * with EFBIG, as they would on a full disk, without filling one.
   */
  async startServer(opts: { maxFileBytes?: number } = {}): Promise<void> {
    const listen = `127.0.0.1:${this.port}`;
    const args = [BIN.server, '--data-dir', this.dataDir, '--listen', listen, '--json-logs', ...this.serverArgs];
    // prlimit execs the server: the child's pid is the server's, so killing it kills the server
    const child =
      opts.maxFileBytes === undefined
        ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('prlimit', [`--fsize=${opts.maxFileBytes}`, '--', process.execPath, ...args], {
            stdio: ['ignore', 'pipe', 'pipe'],
          });
    const proc = track(child);
    this.procs.add(proc);
    this.server = proc;
    this.url = await new Promise<string>((ok, fail) => {
      const onData = () => {
        const m = /listening on (http:\/\/\S+)/.exec(proc.output());
        if (m?.[1]) ok(m[1]);
      };
      child.stdout!.on('data', onData);
      void proc.exited.then((code) => fail(new Error(`builder-server exited (${code}):\n${proc.output()}`)));
    });
    this.port = Number(new URL(this.url).port);
  }

  killServer(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const s = this.server!;
    s.child.kill(signal);
    return s.exited;
  }

  startWorker(
    name: string,
    opts: { platform?: string; capacity?: number; args?: string[]; remote?: string } = {},
  ): Proc {
    const child = spawn(
      process.execPath,
      [
        BIN.worker,
        '--remote',
        opts.remote ?? this.url,
        '--token',
        this.workerToken(name),
        '--name',
        name,
        '--platform',
        opts.platform ?? 'debian-12',
        '--capacity',
        String(opts.capacity ?? 1),
        '--executor',
        'host',
        '--work-dir',
        join(this.dir, `work-${name}`),
        '--reconnect-max-ms',
        '500',
        ...(opts.args ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const proc = track(child);
    this.procs.add(proc);
    this.workers.set(name, proc);
    return proc;
  }

  /** Wait until the server lists these workers as connected. */
  async waitForWorkers(...names: string[]): Promise<void> {
    await waitFor(
      async () => {
        const r = await this.client(['workers', '--json']);
        if (r.code !== 0) return false;
        const list = JSON.parse(r.stdout) as { name: string; connected: boolean }[];
        return names.every((n) => list.some((w) => w.name === n && w.connected));
      },
      `workers ${names.join(', ')} to connect`,
    );
  }

  client(
    args: string[],
    opts: { token?: string; env?: Record<string, string>; timeoutMs?: number; stdin?: string } = {},
  ): Promise<CliResult> {
    const child = spawn(process.execPath, [BIN.client, ...args], {
      stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, BUILDER_REMOTE: this.url, BUILDER_TOKEN: opts.token ?? this.tokens.admin, ...opts.env },
    });
    if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
    const proc = track(child);
    this.procs.add(proc);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    return proc.exited.then((code) => {
      clearTimeout(timer);
      this.procs.delete(proc);
      return { code, stdout, stderr };
    });
  }

  /** Start a client that keeps running (observe, watch); the caller awaits `exited`. */
  clientProc(args: string[]): Proc & { stdout(): string } {
    const child = spawn(process.execPath, [BIN.client, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BUILDER_REMOTE: this.url, BUILDER_TOKEN: this.tokens.admin },
    });
    let stdout = '';
    child.stdout!.on('data', (d) => (stdout += d));
    const proc = track(child);
    this.procs.add(proc);
    return { ...proc, stdout: () => stdout };
  }

  script(name: string, text: string): string {
    const path = join(this.dir, name);
    writeFileSync(path, text);
    return path;
  }

  async schedule(name: string, script: string, extra: string[] = []): Promise<void> {
    const r = await this.client([
      'schedule',
      name,
      '--platform',
      'debian-12',
      '--script',
      this.script(`${name}.sh`, script),
      ...extra,
    ]);
    if (r.code !== 0) throw new Error(`schedule failed: ${r.stderr}`);
  }

  async run(
    ref: string,
  ): Promise<{ state: string; attempt: number; result: { kind: string } | null; worker: string | null; id: string }> {
    const r = await this.client(['info', ref, '--json']);
    if (r.code !== 0) throw new Error(`info ${ref} failed: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Kill every process this cluster started and wait for them (stop() without removing the dir). */
  async kill(): Promise<void> {
    for (const p of this.procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all([...this.procs].map((p) => p.exited));
  }
}

/** Run a `builder-server` maintenance command (`vacuum`, `verify` …) to its end. */
export function serverCommand(args: string[]): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN.server, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((ok) => child.on('exit', (code) => ok({ code, stdout, stderr })));
}

export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Alive and not a zombie (in a container nobody may reap orphans, so kill(pid, 0) alone lies). */
export function procAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return pidAlive(pid);
  }
}

/** Pids written by job scripts (`echo $$ >> FILE`), one a line; missing file: none. */
export function readPids(file: string): number[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** Cleanup for jobs a test may have orphaned: KILL each pid's process group and the pid itself. */
export function killLeftovers(pids: number[]): void {
  for (const pid of pids) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A TCP proxy on 127.0.0.1 (ephemeral port) to `targetPort`; `drop()` cuts every proxied connection. */
export interface TcpProxy {
  port: number;
  /** Connections accepted so far. */
  accepted: number;
  /** Sockets currently proxied (both sides). */
  readonly open: number;
  /** While true, new connections are cut at once (a partition). */
  blocked: boolean;
  drop(): void;
  close(): Promise<void>;
}

export async function tcpProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const keep = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const proxy: TcpProxy = {
    port: 0,
    accepted: 0,
    blocked: false,
    get open() {
      return sockets.size;
    },
    drop() {
      for (const s of sockets) s.destroy();
    },
    close() {
      proxy.drop();
      return new Promise((ok) => server.close(() => ok()));
    },
  };
  const server = createNetServer((downstream) => {
    if (proxy.blocked) {
      downstream.on('error', () => undefined);
      downstream.destroy();
      return;
    }
    proxy.accepted++;
    const upstream = connect(targetPort, '127.0.0.1');
    keep(downstream);
    keep(upstream);
    downstream.on('close', () => upstream.destroy());
    upstream.on('close', () => downstream.destroy());
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  proxy.port = (server.address() as AddressInfo).port;
  return proxy;
}

/** A loopback port free now (taken and released): for a program that must be told its port, or comes up later. */
export async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
}
