import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import {
  BUILD_TYPE,
  INTOTO_PAYLOAD_TYPE,
  INTOTO_STATEMENT_TYPE,
  SLSA_PROVENANCE_TYPE,
  keyId,
  preAuthEncoding,
  type DsseEnvelope,
  type Statement,
} from '@builder/protocol';
import type { Db } from '../store/db.ts';
import { serverKey } from '../store/keys.ts';
import type { JobRow } from '../store/rows.ts';
import type { RunSide } from './compare.ts';

/** The server's provenance signing key: Ed25519, its public half published at /provenance-key.pem. */
export interface ProvenanceKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly publicPem: string;
  readonly keyId: string;
}

/** RFC 8410 PKCS#8 prefix of an Ed25519 private key; the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Made at first start (32 random bytes kept in server_keys, like the attempt-secret key) and kept. */
export function provenanceKey(db: Db, now: number): ProvenanceKey {
  const seed = serverKey(db, 'provenance-ed25519', now);
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyId(publicKey),
  };
}

/** The run as compare reads it (its row, environment, files and inputs), its job and where it is served. */
export interface ProvenanceInput extends RunSide {
  job: JobRow | undefined;
  /** The server's public URL ('' when unknown): the builder's id. */
  serverUrl: string;
  runUrl: string;
}

/** An in-toto Statement v1 with a SLSA Provenance v1 predicate saying how the run's files were made. */
export function provenanceStatement(p: ProvenanceInput): Statement {
  const { run } = p;
  const source = p.job?.source;
  return {
    _type: INTOTO_STATEMENT_TYPE,
    subject: p.artifacts.map((f) => ({ name: f.path, digest: { sha256: f.sha256 } })),
    predicateType: SLSA_PROVENANCE_TYPE,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: {
          job: run.job,
          platform: run.platform,
          script: run.script,
          // parameters only: secrets travel apart and never appear here
          parameters: run.params,
          ...(run.ref !== null && {
            source: { repository: source?.git ?? null, ref: run.ref, commit: run.commit },
          }),
          ...(p.inputs.length > 0 && {
            inputs: p.inputs.map((i) => ({ name: i.name, sha256: i.sha256, size: i.size, from: i.from })),
          }),
        },
        internalParameters: {
          run: run.number,
          ...(run.rebuildOf !== null && { rebuildOf: run.rebuildOf }),
        },
        resolvedDependencies: [
          ...(run.commit !== null && source
            ? [{ uri: `git+${source.git}@${run.ref ?? ''}`, digest: { gitCommit: run.commit } }]
            : []),
          ...p.inputs.map((i) => ({ name: i.name, digest: { sha256: i.sha256 } })),
        ],
      },
      runDetails: {
        builder: { id: p.serverUrl || 'builder-server', version: { builder: p.environment?.builderVersion ?? null } },
        metadata: {
          invocationId: p.runUrl,
          startedOn: iso(run.startedAt),
          finishedOn: iso(run.finishedAt),
        },
        // where it ran: the worker, its executor and kernel, the base and its packages
        byproducts: [
          {
            name: 'environment',
            mediaType: 'application/json',
            annotations: { worker: run.worker, ...(p.environment ?? {}) },
          },
        ],
      },
    },
  };
}

/** The statement in a DSSE envelope signed over PAE(payloadType, payload). */
export function signStatement(statement: Statement, key: ProvenanceKey): DsseEnvelope {
  const body = Buffer.from(JSON.stringify(statement), 'utf8');
  const sig = sign(null, preAuthEncoding(INTOTO_PAYLOAD_TYPE, body), key.privateKey);
  return {
    payloadType: INTOTO_PAYLOAD_TYPE,
    payload: body.toString('base64'),
    signatures: [{ keyid: key.keyId, sig: sig.toString('base64') }],
  };
}

function iso(t: number | null): string | null {
  return t === null ? null : new Date(t).toISOString();
}
