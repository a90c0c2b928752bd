import { createPublicKey, createHash, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';

/** DSSE (github.com/secure-systems-lab/dsse, protocol.md) carrying an in-toto Statement v1. */
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const INTOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE_TYPE = 'https://slsa.dev/provenance/v1';
/** SLSA buildType of a builder run (README "Reproducible builds and provenance" says how to read it); not resolvable on purpose. */
export const BUILD_TYPE = 'https://builder.invalid/build-types/run/v1';

/** PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in bytes as ASCII decimal. */
export function preAuthEncoding(payloadType: string, body: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${body.length} `), body]);
}

export const DsseEnvelopeSchema = z.object({
  payload: z.string(),
  payloadType: z.string(),
  signatures: z.array(z.object({ keyid: z.string().optional(), sig: z.string() })).min(1),
});
export type DsseEnvelope = z.infer<typeof DsseEnvelopeSchema>;

export const StatementSchema = z.object({
  _type: z.literal(INTOTO_STATEMENT_TYPE),
  subject: z.array(z.object({ name: z.string(), digest: z.record(z.string(), z.string()) })),
  predicateType: z.string(),
  predicate: z.record(z.string(), z.unknown()),
});
export type Statement = z.infer<typeof StatementSchema>;

/** The key id we sign with: SHA-256 of the public key's DER (SPKI), hex. */
export function keyId(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/** Why an envelope is not to be trusted, or the statement it signs. */
export type EnvelopeCheck = { ok: true; statement: Statement } | { ok: false; problem: string };

/** Checks the envelope's signature with `publicKeyPem` (Ed25519) and that it carries an in-toto statement. */
export function verifyEnvelope(envelope: unknown, publicKeyPem: string): EnvelopeCheck {
  const parsed = DsseEnvelopeSchema.safeParse(envelope);
  if (!parsed.success) return { ok: false, problem: 'not a DSSE envelope (payload, payloadType, signatures)' };
  const env = parsed.data;
  if (env.payloadType !== INTOTO_PAYLOAD_TYPE) {
    return { ok: false, problem: `payload type is ${env.payloadType}, not ${INTOTO_PAYLOAD_TYPE}` };
  }
  let key: KeyObject;
  try {
    key = createPublicKey(publicKeyPem);
  } catch {
    return { ok: false, problem: 'the public key is not a PEM public key' };
  }
  const body = Buffer.from(env.payload, 'base64');
  const pae = preAuthEncoding(env.payloadType, body);
  const good = env.signatures.some((s) => {
    try {
      return verify(null, pae, key, Buffer.from(s.sig, 'base64'));
    } catch {
      return false;
    }
  });
  if (!good) {
    // keyid is an unauthenticated hint: it only chooses the message, never the verdict
    const ids = env.signatures.map((s) => s.keyid).filter((id): id is string => !!id);
    const given = keyId(key);
    if (ids.length > 0 && !ids.includes(given)) {
      return {
        ok: false,
        problem: `signature does not match the key given: the document is signed by key ${ids.join(', ')}, the key given is ${given}`,
      };
    }
    return { ok: false, problem: 'signature does not match: the document was changed after it was signed' };
  }
  let statement: unknown;
  try {
    statement = JSON.parse(body.toString('utf8'));
  } catch {
    return { ok: false, problem: 'the signed payload is not JSON' };
  }
  const s = StatementSchema.safeParse(statement);
  if (!s.success) return { ok: false, problem: 'the signed payload is not an in-toto Statement v1' };
  return { ok: true, statement: s.data };
}
