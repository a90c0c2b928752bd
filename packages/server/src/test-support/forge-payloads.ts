/**
 * Push deliveries as each forge sends them, for the hook tests: the payloads follow the examples
 * in each forge's webhook documentation (GitHub "push" event, Gitea/Forgejo "Webhooks", GitLab
 * "Push events"), with the ref, commits and delivery id a test chooses, and each forge's headers
 * and signature.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { Forge } from '../hooks/forges.ts';

export interface PushSpec {
  ref: string;
  before?: string;
  after: string;
  defaultBranch?: string;
  /** Forges say so in their own way: GitHub `deleted`, the others an all-zero `after`. */
  deleted?: boolean;
}

const ZERO = '0000000000000000000000000000000000000000';

export function payload(forge: Forge, p: PushSpec): object {
  const before = p.before ?? '6113728f27ae82c7b1a177c8d03f9e96e0adf246';
  const after = p.deleted ? ZERO : p.after;
  const commit = {
    id: after,
    message: 'Update README.md',
    timestamp: '2024-01-16T10:11:12+01:00',
    url: `https://example.org/octo/hello/commit/${after}`,
    author: { name: 'Monalisa Octocat', email: 'mona@example.org', username: 'octocat' },
    committer: { name: 'Monalisa Octocat', email: 'mona@example.org', username: 'octocat' },
    added: [],
    removed: [],
    modified: ['README.md'],
  };
  const branch = p.defaultBranch ?? 'main';
  switch (forge) {
    case 'github':
      return {
        ref: p.ref,
        before,
        after,
        repository: {
          id: 186853002,
          name: 'hello',
          full_name: 'octo/hello',
          private: false,
          owner: { name: 'octo', login: 'octo' },
          html_url: 'https://github.com/octo/hello',
          clone_url: 'https://github.com/octo/hello.git',
          default_branch: branch,
          master_branch: branch,
        },
        pusher: { name: 'octocat', email: 'mona@example.org' },
        sender: { login: 'octocat', id: 21031067, type: 'User' },
        created: false,
        deleted: p.deleted === true,
        forced: false,
        base_ref: null,
        compare: `https://github.com/octo/hello/compare/${before.slice(0, 12)}...${after.slice(0, 12)}`,
        commits: p.deleted ? [] : [{ ...commit, distinct: true, tree_id: 'f9d2a07e9488b91af2641b26b9407fe22a451433' }],
        head_commit: p.deleted ? null : { ...commit, distinct: true },
      };
    case 'gitea':
    case 'forgejo':
      return {
        ref: p.ref,
        before,
        after,
        compare_url: `http://localhost:3000/gitea/webhooks/compare/${before}...${after}`,
        commits: p.deleted ? [] : [commit],
        head_commit: p.deleted ? null : commit,
        repository: {
          id: 140,
          owner: { id: 1, login: 'gitea', full_name: 'Gitea', username: 'gitea' },
          name: 'webhooks',
          full_name: 'gitea/webhooks',
          private: false,
          fork: false,
          html_url: 'http://localhost:3000/gitea/webhooks',
          clone_url: 'http://localhost:3000/gitea/webhooks.git',
          default_branch: branch,
        },
        pusher: { id: 1, login: 'gitea', full_name: 'Gitea', email: 'someone@gitea.io', username: 'gitea' },
        sender: { id: 1, login: 'gitea', full_name: 'Gitea', email: 'someone@gitea.io', username: 'gitea' },
      };
    case 'gitlab':
      return {
        object_kind: p.ref.startsWith('refs/tags/') ? 'tag_push' : 'push',
        event_name: p.ref.startsWith('refs/tags/') ? 'tag_push' : 'push',
        before,
        after,
        ref: p.ref,
        ref_protected: true,
        checkout_sha: p.deleted ? null : after,
        user_id: 4,
        user_name: 'John Smith',
        user_username: 'jsmith',
        user_email: 'john@example.com',
        project_id: 15,
        project: {
          id: 15,
          name: 'Diaspora',
          web_url: 'http://example.com/mike/diaspora',
          git_http_url: 'http://example.com/mike/diaspora.git',
          namespace: 'Mike',
          path_with_namespace: 'mike/diaspora',
          default_branch: branch,
        },
        repository: {
          name: 'Diaspora',
          url: 'git@example.com:mike/diaspora.git',
          description: '',
          homepage: 'http://example.com/mike/diaspora',
        },
        commits: p.deleted ? [] : [commit],
        total_commits_count: p.deleted ? 0 : 1,
      };
  }
}

/** The event each forge names a push (GitLab: a tag push is its own event). */
export function pushEvent(forge: Forge, ref = 'refs/heads/main'): string {
  if (forge === 'gitlab') return ref.startsWith('refs/tags/') ? 'Tag Push Hook' : 'Push Hook';
  return 'push';
}

/** The headers a forge sends with `body`, signed (or carrying the token) with `secret`. */
export function forgeHeaders(
  forge: Forge,
  body: string,
  secret: string,
  opts: { event?: string; delivery?: string } = {},
): Record<string, string> {
  const event = opts.event ?? pushEvent(forge);
  const delivery = opts.delivery ?? randomUUID();
  const hmac = createHmac('sha256', secret).update(body).digest('hex');
  const json = { 'content-type': 'application/json' };
  switch (forge) {
    case 'github':
      return {
        ...json,
        'user-agent': 'GitHub-Hookshot/044aadd',
        'x-github-event': event,
        'x-github-delivery': delivery,
        'x-github-hook-id': '292430182',
        'x-hub-signature-256': `sha256=${hmac}`,
      };
    case 'gitea':
      // Gitea also sends GitHub's and Gogs' headers (and GitHub's signature)
      return {
        ...json,
        'x-github-event': event,
        'x-github-delivery': delivery,
        'x-gogs-event': event,
        'x-gogs-delivery': delivery,
        'x-gitea-event': event,
        'x-gitea-event-type': event,
        'x-gitea-delivery': delivery,
        'x-gitea-signature': hmac,
        'x-hub-signature-256': `sha256=${hmac}`,
      };
    case 'forgejo':
      return {
        ...json,
        'x-github-event': event,
        'x-github-delivery': delivery,
        'x-gitea-event': event,
        'x-gitea-delivery': delivery,
        'x-gitea-signature': hmac,
        'x-forgejo-event': event,
        'x-forgejo-delivery': delivery,
        'x-forgejo-signature': hmac,
      };
    case 'gitlab':
      return {
        ...json,
        'user-agent': 'GitLab/17.0.0',
        'x-gitlab-event': event,
        'x-gitlab-event-uuid': delivery,
        'x-gitlab-webhook-uuid': '2ba2ad27-0dc6-4e8d-9fbb-cbd2a8e2e0b4',
        'x-gitlab-instance': 'https://gitlab.example.com',
        'x-gitlab-token': secret,
      };
  }
}
