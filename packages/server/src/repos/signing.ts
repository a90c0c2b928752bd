import { createHash, createPrivateKey, createPublicKey, generateKeyPair, privateEncrypt, constants } from 'node:crypto';
import { promisify } from 'node:util';
import type * as OpenPGP from 'openpgp';
import type { Db } from '../store/db.ts';
import { keepKey, storedKey } from '../store/keys.ts';

const OPENPGP_KEY = 'repo-openpgp';

/** openpgp takes ~16 MiB of memory: loaded the first time a repository needs its key, not at every start. */
const loadOpenpgp = (): Promise<typeof OpenPGP> => import('openpgp');
const PKG_KEY = 'repo-pkg-rsa';

/**
 * The keys that sign the package repositories: an OpenPGP key (Ed25519) for apt's Release files
 * and an RSA key for FreeBSD pkg catalogues. Made once and kept in server_keys (readable by the
 * server's user only), so clients that trust them keep trusting the server after a restart.
 */
export class RepoKeys {
  private constructor(
    private readonly openpgp: typeof OpenPGP,
    private readonly pgp: OpenPGP.PrivateKey,
    /** The public key, ASCII-armored (`/repo/key.asc`). */
    readonly armored: string,
    /** The same, binary (`/repo/key.gpg`, for `signed-by`). */
    readonly binary: Buffer,
    readonly fingerprint: string,
    private readonly rsaPem: string,
    /** The pkg signing key's public half, PEM SubjectPublicKeyInfo (what pkg's `pubkey` file holds). */
    readonly pkgPublicPem: string,
  ) {}

  static async load(db: Db, now: number, name = 'builder'): Promise<RepoKeys> {
    const openpgp = await loadOpenpgp();
    let armoredPrivate = storedKey(db, OPENPGP_KEY)?.toString('utf8');
    if (armoredPrivate === undefined) {
      const made = await openpgp.generateKey({
        // v4 EdDSA: what GnuPG 2.2 (Debian 12's gpgv, used by apt) verifies; RFC 9580 v6 keys it cannot
        type: 'ecc',
        curve: 'ed25519Legacy',
        userIDs: [{ name: `${name} package repositories` }],
        format: 'armored',
      });
      armoredPrivate = keepKey(db, OPENPGP_KEY, Buffer.from(made.privateKey), now).toString('utf8');
    }
    const pgp = await openpgp.readPrivateKey({ armoredKey: armoredPrivate });
    const pub = pgp.toPublic();
    let rsa = storedKey(db, PKG_KEY)?.toString('utf8');
    if (rsa === undefined) {
      const { privateKey } = await promisify(generateKeyPair)('rsa', {
        modulusLength: 4096,
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        publicKeyEncoding: { type: 'spki', format: 'pem' },
      });
      rsa = keepKey(db, PKG_KEY, Buffer.from(privateKey), now).toString('utf8');
    }
    const pkgPublicPem = createPublicKey(createPrivateKey(rsa)).export({ type: 'spki', format: 'pem' }).toString();
    return new RepoKeys(
      openpgp,
      pgp,
      pub.armor(),
      Buffer.from(pub.write()),
      pub.getFingerprint().toUpperCase(),
      rsa,
      pkgPublicPem,
    );
  }

  /** InRelease: the Release text in an OpenPGP cleartext signature. */
  async clearsign(text: string): Promise<string> {
    const message = await this.openpgp.createCleartextMessage({ text });
    return this.openpgp.sign({ message, signingKeys: this.pgp, format: 'armored' });
  }

  /** Release.gpg: a detached, armored signature over the exact bytes. */
  async detachSign(bytes: Buffer): Promise<string> {
    const message = await this.openpgp.createMessage({ binary: bytes });
    return this.openpgp.sign({ message, signingKeys: this.pgp, detached: true, format: 'armored' });
  }

  /**
   * pkg's legacy RSA signature of a catalogue: PKCS#1 v1.5 over the lowercase hex SHA-256 of the
   * file, wrapped in a SHA-1 DigestInfo as pkg's `RSA_sign(NID_sha1, hex, 64)` makes it.
   */
  pkgSign(bytes: Buffer): Buffer {
    return pkgRsaSign(this.rsaPem, bytes);
  }
}

/** DER prefix of a DigestInfo with the SHA-1 algorithm identifier and a 64-byte OCTET STRING. */
const SHA1_DIGEST_INFO_64 = Buffer.from('304d300906052b0e03021a05000440', 'hex');

export function pkgRsaSign(privatePem: string, bytes: Buffer): Buffer {
  const hex = Buffer.from(createHash('sha256').update(bytes).digest('hex'), 'latin1');
  return privateEncrypt(
    { key: privatePem, padding: constants.RSA_PKCS1_PADDING },
    Buffer.concat([SHA1_DIGEST_INFO_64, hex]),
  );
}
