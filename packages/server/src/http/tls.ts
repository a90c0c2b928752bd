import { readFileSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { Logger } from '../log.ts';

/** `--tls-cert` and `--tls-key`: PEM files, read at start and again on every SIGHUP. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** A certificate or key that cannot be used; the message names the file and the problem. */
export class TlsFileError extends Error {
  override readonly name = 'TlsFileError';
}

/** Read and check the pair: both readable, and the key belongs to the certificate. */
export function readTls(files: TlsFiles): { cert: Buffer; key: Buffer } {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new TlsFileError(`${what} ${file}: cannot read it (${(err as Error).message})`);
    }
  };
  const cert = read(files.certFile, '--tls-cert');
  const key = read(files.keyFile, '--tls-key');
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new TlsFileError(
      `--tls-cert ${files.certFile} / --tls-key ${files.keyFile}: not a usable certificate and key (${(err as Error).message})`,
    );
  }
  return { cert, key };
}

/**
 * Load the files again and use them for new connections (open ones keep theirs). A pair that does
 * not load is logged and the old one kept, so a half-written renewal never takes the server down.
 */
export function reloadTls(server: HttpsServer, files: TlsFiles, logger: Logger): boolean {
  try {
    server.setSecureContext(readTls(files));
  } catch (err) {
    logger.error('tls.reload_failed', {
      error: (err as Error).message,
      hint: 'still serving the previous certificate; fix the files and send SIGHUP again',
    });
    return false;
  }
  logger.info('tls.reloaded', { cert: files.certFile });
  return true;
}
