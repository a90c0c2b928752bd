import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * The forges whose push events `POST /hooks/JOB` takes, each told by its own headers. Gitea also
 * sends GitHub's and Gogs' headers, Forgejo also Gitea's: the most specific one is looked for first.
 */
export const FORGES = ['forgejo', 'gitea', 'gitlab', 'github'] as const;
export type Forge = (typeof FORGES)[number];

interface ForgeHeaders {
  event: string;
  delivery: string;
  /** How the secret is proven: an HMAC-SHA256 of the body in this header, or the secret itself. */
  proof: { kind: 'hmac'; header: string; prefix: string } | { kind: 'token'; header: string };
  /** The event names that are pushes to branches or tags. */
  push: readonly string[];
}

const HEADERS: Record<Forge, ForgeHeaders> = {
  forgejo: {
    event: 'x-forgejo-event',
    delivery: 'x-forgejo-delivery',
    proof: { kind: 'hmac', header: 'x-forgejo-signature', prefix: '' },
    push: ['push'],
  },
  gitea: {
    event: 'x-gitea-event',
    delivery: 'x-gitea-delivery',
    proof: { kind: 'hmac', header: 'x-gitea-signature', prefix: '' },
    push: ['push'],
  },
  gitlab: {
    event: 'x-gitlab-event',
    delivery: 'x-gitlab-event-uuid',
    proof: { kind: 'token', header: 'x-gitlab-token' },
    push: ['Push Hook', 'Tag Push Hook', 'System Hook'],
  },
  github: {
    event: 'x-github-event',
    delivery: 'x-github-delivery',
    proof: { kind: 'hmac', header: 'x-hub-signature-256', prefix: 'sha256=' },
    push: ['push'],
  },
};

export interface ForgeRequest {
  forge: Forge;
  /** The event name as the forge sent it (`push`, `ping`, `Push Hook` …). */
  event: string;
  /** The forge's id of this delivery, the same when it redelivers; null when it sent none. */
  delivery: string | null;
  isPush: boolean;
  /** The name of the header that must carry the proof of the secret. */
  proofHeader: string;
}

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Which forge sent this request; undefined when none of their event headers is there. */
export function identifyForge(headers: IncomingHttpHeaders): ForgeRequest | undefined {
  for (const forge of FORGES) {
    const h = HEADERS[forge];
    const event = header(headers, h.event);
    if (event === undefined) continue;
    const delivery = header(headers, h.delivery);
    return {
      forge,
      event,
      delivery: delivery === undefined || delivery === '' ? null : delivery.slice(0, 200),
      isPush: h.push.includes(event),
      proofHeader: h.proof.header,
    };
  }
  return undefined;
}

export type Proof = 'ok' | 'missing' | 'wrong';

/** Whether the request proves it knows `secret`, compared in constant time. */
export function checkProof(forge: Forge, headers: IncomingHttpHeaders, body: Buffer, secret: string): Proof {
  const proof = HEADERS[forge].proof;
  const sent = header(headers, proof.header);
  if (sent === undefined || sent === '') return 'missing';
  if (proof.kind === 'token') {
    // hashed first so both sides have the same length whatever was sent
    const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
    return timingSafeEqual(digest(sent), digest(secret)) ? 'ok' : 'wrong';
  }
  if (!sent.startsWith(proof.prefix)) return 'wrong';
  const hex = sent.slice(proof.prefix.length).trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) return 'wrong';
  const expected = createHmac('sha256', secret).update(body).digest();
  return timingSafeEqual(Buffer.from(hex, 'hex'), expected) ? 'ok' : 'wrong';
}

const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

export type Push =
  | { kind: 'branch'; branch: string; commit: string; defaultBranch: string | null }
  | { kind: 'ignored'; why: string }
  | { kind: 'invalid'; why: string };

/** What a push event asks for: a branch at a commit, or something this server does not build. */
export function readPush(payload: unknown): Push {
  // the fields every forge sends alike (GitHub's names, which Gitea and GitLab also use)
  const p = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<string, unknown>;
  const { ref, after, deleted } = p;
  if (typeof ref !== 'string' || ref === '') return { kind: 'invalid', why: 'not a push event: no "ref"' };
  if (typeof after !== 'string' || !SHA.test(after)) {
    return { kind: 'invalid', why: 'not a push event: "after" is not a full commit SHA' };
  }
  if (deleted === true || /^0+$/.test(after)) return { kind: 'ignored', why: `${ref} was deleted: nothing to build` };
  if (ref.startsWith('refs/tags/'))
    return { kind: 'ignored', why: `${ref} is a tag push: only branch pushes queue runs` };
  if (!ref.startsWith('refs/heads/')) return { kind: 'ignored', why: `${ref} is not a branch` };
  return { kind: 'branch', branch: ref.slice('refs/heads/'.length), commit: after, defaultBranch: defaultBranch(p) };
}

/** The repository's default branch as the payload tells it (GitHub, Gitea: repository; GitLab: project). */
function defaultBranch(p: Record<string, unknown>): string | null {
  for (const key of ['repository', 'project']) {
    const o = p[key];
    if (typeof o === 'object' && o !== null) {
      const b = (o as Record<string, unknown>).default_branch;
      if (typeof b === 'string' && b !== '') return b;
    }
  }
  return null;
}

/** Whether `branch` is one of `patterns` (names, `*` matching any run of characters but `/`… or all with `**`). */
export function branchMatches(branch: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => {
    const name = p.startsWith('refs/heads/') ? p.slice('refs/heads/'.length) : p;
    if (!name.includes('*')) return name === branch;
    const re = name
      .split(/(\*\*|\*)/)
      .map((part) => (part === '**' ? '.*' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
      .join('');
    return new RegExp(`^${re}$`).test(branch);
  });
}
