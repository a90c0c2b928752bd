/**
 * A job's prepare step through real builder-server + builder-worker processes: on the chroot
 * worker it runs as root with the host's network, then the job's script runs in the same overlay
 * as nobody without network; the host executor refuses it, saying why. The network check is a
 * TCP listener the test opens on the host's loopback: the prepare step reaches it (its network is
 * the host's), the build step cannot (a network namespace of its own). Needs root, bubblewrap and
 * the test rootfs for the chroot part (see packages/worker/src/test-support/chroot-root.ts).
 */
import { createServer, type Server } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  chrootSkipReason,
  ensureRootfs,
  ROOTFS,
  ROOTFS_TIMEOUT_MS,
  TEST_ID_RANGE,
} from '../packages/worker/src/test-support/chroot-root.ts';
import { Cluster } from './harness.ts';

const skip = chrootSkipReason();
if (skip) console.warn(`chroot prepare test skipped: ${skip}`);

/** A loopback listener that records the first line of each connection. */
async function listener(): Promise<{ server: Server; port: number; lines: string[] }> {
  const lines: string[] = [];
  const server = createServer((sock) => {
    let text = '';
    sock.on('data', (d) => (text += d));
    sock.on('end', () => lines.push(text.trim()));
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0, lines };
}

const PREPARE = (port: number) => `set -eu
echo "prepare as $(id -un)"
# what a prepare step is for: change the system (here a file only root may write)
echo from-prepare >/usr/local/share/prepared
bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}; echo prepare >&3' && echo "prepare reached the host"
`;

const BUILD = (port: number) => `set -u
echo "build as $(id -un)"
cat /usr/local/share/prepared
if echo nope >/usr/local/share/prepared 2>/dev/null; then echo "build wrote a system file"; fi
if bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}; echo build >&3' 2>/dev/null; then echo "build reached the host"; else echo "build has no network"; fi
echo done >"$BUILDER_OUTPUT/built"
`;

describe('prepare step on the host executor', () => {
  let c: Cluster;
  afterEach(async () => {
    await c?.stop();
  });

  it('is refused with a reason', async () => {
    c = await Cluster.start();
    c.startWorker('hw');
    await c.waitForWorkers('hw');
    await c.schedule('p', 'echo build', ['--prepare', c.script('prep.sh', 'echo prepare')]);
    const r = await c.client(['execute', 'p', '--follow']);
    expect(r.code).not.toBe(0);
    const run = await c.run('p/1');
    expect(run.result).toMatchObject({ kind: 'error' });
    expect(JSON.stringify(run.result)).toContain('the host executor cannot run a prepare step');
    expect(r.stdout).not.toContain('build');
    // the run page shows both steps, the prepare step first
    const page = await (await fetch(`${c.url}/job/p/run/1`)).text();
    expect(page).toContain('<pre id="run-prepare" tabindex="0">echo prepare</pre>');
    expect(page.indexOf('run-prepare')).toBeLessThan(page.indexOf('echo build'));
  }, 60_000);
});

describe.skipIf(skip !== undefined)('prepare step on the chroot worker', () => {
  let c: Cluster;
  let net: Awaited<ReturnType<typeof listener>>;
  beforeAll(async () => {
    await ensureRootfs();
    c = await Cluster.start();
    net = await listener();
  }, ROOTFS_TIMEOUT_MS);
  afterAll(async () => {
    await c?.stop();
    net?.server.close();
  });

  it('runs as root with network, then the build as nobody without network in the same overlay', async () => {
    c.startWorker('cw', { args: ['--executor', 'chroot', '--root', ROOTFS, '--id-range', TEST_ID_RANGE] });
    await c.waitForWorkers('cw');
    await c.schedule('prep', BUILD(net.port), ['--prepare', c.script('prepare-step.sh', PREPARE(net.port))]);
    const info = await c.client(['info', 'prep', '--json']);
    expect(JSON.parse(info.stdout)).toMatchObject({ job: { prepare: PREPARE(net.port) } });
    expect((await c.client(['info', 'prep'])).stdout).toContain(`Prepare (root, network):\n${PREPARE(net.port)}`);

    const r = await c.client(['execute', 'prep', '--follow']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = r.stdout;
    expect(out).toContain('[builder] prepare step: as root, with network');
    expect(out).toContain('prepare as root\n');
    expect(out).toContain('prepare reached the host\n');
    expect(out).toContain('[builder] build step: as uid 65534, without network');
    expect(out).toContain('build as nobody\nfrom-prepare\n');
    expect(out).not.toContain('build wrote a system file');
    expect(out).toContain('build has no network\n');
    expect(out).not.toContain('build reached the host');
    expect(out.indexOf('prepare as root')).toBeLessThan(out.indexOf('build as nobody'));
    expect(net.lines).toEqual(['prepare']);
    // the run keeps the prepare step it ran
    expect((await c.client(['info', 'prep/1'])).stdout).toContain('Prepare (root, network):\nset -eu\n');
    const art = await c.client(['artifacts', 'prep/1']);
    expect(art.stdout).toContain('built');
  }, 120_000);

  it('a failing prepare step ends the run without its build', async () => {
    await c.schedule('badprep', 'echo "the build ran"', ['--prepare', c.script('bad.sh', 'echo preparing; exit 3')]);
    const r = await c.client(['execute', 'badprep', '--follow']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toContain('preparing');
    expect(r.stdout).toContain('[builder] the prepare step failed: the build step does not run');
    expect(r.stdout).not.toContain('the build ran');
    expect((await c.run('badprep/1')).result).toMatchObject({ kind: 'exited', code: 3 });
  }, 120_000);
});
