/**
 * TLS without a proxy: builder-server --tls-cert/--tls-key serves HTTPS and WSS on its one port,
 * workers and clients trust a private CA made by openssl here (--ca, BUILDER_CA,
 * NODE_EXTRA_CA_CERTS), a certificate that does not verify is refused at once with the cause and
 * the way to trust the CA, and SIGHUP loads a renewed certificate for new connections.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, serverCommand, waitFor } from './harness.ts';
import { haveOpenssl, makeCa, makeServerCert } from './tls-support.ts';

const untrusted = (remote: string) =>
  `builder-client: the TLS certificate of ${remote} was not accepted: it is signed by a CA this machine does not trust (UNABLE_TO_VERIFY_LEAF_SIGNATURE); if the server uses a private CA, pass --ca CA.pem or set NODE_EXTRA_CA_CERTS=CA.pem (the CA certificate, not the server key)\n`;

describe.skipIf(!haveOpenssl)(
  'TLS served by builder-server itself (certificates by openssl)',
  { timeout: 3 * 60_000 },
  () => {
    let c: Cluster | undefined;
    let pki: string | undefined;
    afterEach(async () => {
      await c?.stop();
      if (pki !== undefined) rmSync(pki, { recursive: true, force: true });
      c = pki = undefined;
    });

    /** A cluster whose server has a certificate of `ca1`, at paths a renewal overwrites. */
    async function tlsCluster() {
      const dir = mkdtempSync(join(tmpdir(), 'builder-pki-'));
      pki = dir;
      const ca = makeCa(dir, 'ca1');
      const cert = makeServerCert(dir, ca, 'server1');
      const live = { cert: join(dir, 'live.pem'), key: join(dir, 'live.key') };
      copyFileSync(cert.cert, live.cert);
      copyFileSync(cert.key, live.key);
      c = await Cluster.start(['--tls-cert', live.cert, '--tls-key', live.key]);
      c.clientEnv = { BUILDER_CA: ca.cert };
      return { c, dir, ca, live };
    }

    it('serves workers and clients over https/wss; a wrong CA is refused at once, exit 4, saying how to trust one', async () => {
      const { c, dir, ca, live } = await tlsCluster();
      expect(c.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

      c.startWorker('w1', { args: ['--ca', ca.cert] });
      await c.waitForWorkers('w1');
      await c.schedule('hello', 'echo "hello over tls"\n');
      const run = await c.client(['execute', 'hello', '--follow']);
      expect(run.stderr).toContain('hello/1 on debian-12: exited 0 (succeeded)');
      expect(run.stdout).toContain('hello over tls\n');
      expect(run.code).toBe(0);

      // NODE_EXTRA_CA_CERTS works as well as --ca
      const viaEnv = await c.client(['info'], { env: { BUILDER_CA: '', NODE_EXTRA_CA_CERTS: ca.cert } });
      expect(viaEnv.stderr).toBe('');
      expect(viaEnv.code).toBe(0);

      // another CA: refused at once, never retried like a network blip (watch would retry those)
      const other = makeCa(dir, 'other');
      for (const args of [['info'], ['watch', 'hello/1'], ['execute', 'hello', '--follow']]) {
        const r = await c.client(args, { env: { BUILDER_CA: other.cert } });
        expect(r.stderr, args.join(' ')).toBe(untrusted(c.url));
        expect(r.code).toBe(4);
      }
      const none = await c.client(['info'], { env: { BUILDER_CA: '' } });
      expect(none.stderr).toBe(untrusted(c.url));
      expect(none.code).toBe(4);
      const upload = await c.client(['upload', 'hello', live.cert], { env: { BUILDER_CA: other.cert } });
      expect(upload.stderr).toContain(
        `builder-client: the TLS certificate of ${c.url} was not accepted: it is signed by a CA this machine does not trust (UNABLE_TO_VERIFY_LEAF_SIGNATURE); if the server uses a private CA`,
      );
      expect(upload.stderr).not.toContain('refused');
      expect(upload.code).toBe(4);

      // a CA file that is not one: a usage error naming it
      const bad = await c.client(['info'], { env: { BUILDER_CA: live.key } });
      expect(bad.stderr).toBe(
        `builder-client: --ca ${live.key}: not a PEM certificate file (no BEGIN CERTIFICATE line)\n`,
      );
      expect(bad.code).toBe(2);

      // a worker that does not trust the certificate stops at its first connection, saying why
      const w2 = c.startWorker('w2', { args: ['--ca', other.cert] });
      expect(await w2.exited).toBe(4);
      expect(w2.output()).toContain('worker.refused');
      expect(w2.output()).toContain('was not accepted: it is signed by a CA this machine does not trust');
      expect(w2.output()).toContain('--ca FILE or NODE_EXTRA_CA_CERTS');
    });

    it('SIGHUP loads a renewed certificate for new connections; open ones keep going; a broken pair is not loaded', async () => {
      const { c, dir, ca, live } = await tlsCluster();
      const w1 = c.startWorker('w1', { args: ['--ca', ca.cert] });
      await c.waitForWorkers('w1');

      // renewal: a certificate from another CA written over the same files, then SIGHUP
      const ca2 = makeCa(dir, 'ca2');
      const cert2 = makeServerCert(dir, ca2, 'server2');
      copyFileSync(cert2.cert, live.cert);
      copyFileSync(cert2.key, live.key);
      c.server!.child.kill('SIGHUP');
      await waitFor(
        async () => (await c.client(['info'], { env: { BUILDER_CA: ca2.cert } })).code === 0,
        'new connections to get the new certificate',
      );
      const old = await c.client(['info'], { env: { BUILDER_CA: ca.cert } });
      expect(old.stderr).toBe(untrusted(c.url));
      expect(old.code).toBe(4);
      expect(c.server!.output()).toContain('"tls.reloaded"');

      // the worker's connection, opened before the renewal, is still the same one and takes runs
      c.clientEnv = { BUILDER_CA: ca2.cert };
      await c.waitForWorkers('w1');
      await c.schedule('after', 'echo "after renewal"\n');
      const run = await c.client(['execute', 'after', '--follow']);
      expect(run.stdout).toContain('after renewal\n');
      expect(run.code).toBe(0);
      expect(w1.output().match(/connection\.connected/g)).toHaveLength(1);

      // a half-written renewal (a key that is not one) is refused; the server keeps its certificate
      writeFileSync(live.key, 'not a key\n');
      c.server!.child.kill('SIGHUP');
      await waitFor(() => c.server!.output().includes('"tls.reload_failed"'), 'the reload to fail');
      expect(c.server!.output()).toContain('still serving the previous certificate');
      const still = await c.client(['info']);
      expect(still.code).toBe(0);
    });

    it('refuses half a TLS configuration and unreadable files before it listens', async () => {
      const probe = new Cluster();
      try {
        const half = await serverCommand([
          '--data-dir',
          probe.dataDir,
          '--listen',
          '127.0.0.1:0',
          '--tls-cert',
          'x.pem',
        ]);
        expect(half.stderr).toBe(
          'builder-server: --tls-cert and --tls-key go together: give both, or neither for plain HTTP (see --help)\n',
        );
        expect(half.code).toBe(2);
        const missing = join(probe.dir, 'missing.pem');
        const unreadable = await serverCommand([
          '--data-dir',
          probe.dataDir,
          '--listen',
          '127.0.0.1:0',
          '--tls-cert',
          missing,
          '--tls-key',
          missing,
        ]);
        expect(unreadable.stderr).toContain(`builder-server: --tls-cert ${missing}: cannot read it (ENOENT`);
        expect(unreadable.code).toBe(2);
      } finally {
        await probe.stop();
      }
    });
  },
);
