import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';

/** TLS options for connections to the server: extra CAs to trust, or Node's defaults. */
export interface Trust {
  /** Undefined: Node's own store (Mozilla's roots plus NODE_EXTRA_CA_CERTS). */
  readonly ca?: readonly string[];
}

/** A `--ca` file that cannot be used; the message names the file and what is wrong. */
export class TrustFileError extends Error {
  override readonly name = 'TrustFileError';
}

/**
 * The CAs to trust: with `caFile` (`--ca`), that file's certificates on top of the public roots
 * and NODE_EXTRA_CA_CERTS (an explicit `ca` option replaces Node's store, so both are added back).
 */
export function loadTrust(caFile: string | undefined, env: NodeJS.ProcessEnv = process.env): Trust {
  if (caFile === undefined || caFile === '') return {};
  const own = readPem(caFile, '--ca');
  const extraFile = env.NODE_EXTRA_CA_CERTS;
  const extra = extraFile ? readPem(extraFile, 'NODE_EXTRA_CA_CERTS') : undefined;
  return { ca: [...rootCertificates, own, ...(extra === undefined ? [] : [extra])] };
}

function readPem(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TrustFileError(`${what} ${file}: cannot read it (${(err as Error).message})`);
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new TrustFileError(`${what} ${file}: not a PEM certificate file (no BEGIN CERTIFICATE line)`);
  }
  return text;
}

/** OpenSSL's verification failures and Node's host name check: the server's certificate was not accepted. */
const CERTIFICATE_CODES: Readonly<Record<string, string>> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'it is signed by a CA this machine does not trust',
  UNABLE_TO_GET_ISSUER_CERT: 'it is signed by a CA this machine does not trust',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'it is signed by a CA this machine does not trust',
  SELF_SIGNED_CERT_IN_CHAIN: 'its chain ends in a CA this machine does not trust',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'it is self-signed',
  CERT_UNTRUSTED: 'it is not trusted',
  CERT_SIGNATURE_FAILURE: 'its signature does not verify',
  CERT_HAS_EXPIRED: 'it has expired',
  CERT_NOT_YET_VALID: 'it is not valid yet (check both clocks)',
  CERT_REVOKED: 'it was revoked',
  INVALID_CA: 'a CA in its chain is not a valid CA',
  INVALID_PURPOSE: 'it is not for TLS servers',
  ERR_TLS_CERT_ALTNAME_INVALID: 'it is not for this host name',
  HOSTNAME_MISMATCH: 'it is not for this host name',
};

/** The hint that follows every certificate failure: how to trust a private CA. */
export const TRUST_HINT =
  'if the server uses a private CA, pass --ca CA.pem or set NODE_EXTRA_CA_CERTS=CA.pem (the CA certificate, not the server key)';

/**
 * One line saying that and why the server's certificate was refused, or undefined when `error` is
 * not a certificate failure. Such a failure is a configuration problem: retrying cannot fix it.
 */
export function certificateProblem(error: unknown, server: string): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return undefined;
  const why = CERTIFICATE_CODES[code];
  if (why === undefined) return undefined;
  const hint =
    code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH'
      ? 'use a host name the certificate names in the remote URL, or make the certificate name this one'
      : code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID'
        ? 'renew the server certificate (builder-server reloads it on SIGHUP)'
        : TRUST_HINT;
  return `the TLS certificate of ${server} was not accepted: ${why} (${code}); ${hint}`;
}
