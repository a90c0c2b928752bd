import { STATUS_CODES } from 'node:http';

/** builder-server marks every HTTP answer with this header; a proxy's own answers lack it. */
export const SERVER_HEADER = 'x-builder-server';

/** What to look at on the proxy, per status it answered with. */
function hint(status: number, body: string, websocket: boolean): string {
  switch (status) {
    case 413:
      return 'the request is larger than the proxy allows: lift its body limit for /artifacts/, /upload/, /inputs and /blobs/ (nginx: client_max_body_size 0; see debian/nginx.conf)';
    case 502:
      return "the proxy cannot reach builder-server: is it running, and does the proxy's upstream (nginx: proxy_pass) name its --listen address?";
    case 503:
      return "the proxy has no builder-server to hand this to (maintenance, or no upstream up); see the proxy's error log";
    case 504:
      return "builder-server did not answer the proxy in time: raise the proxy's timeouts (nginx: proxy_read_timeout, proxy_send_timeout; see debian/nginx.conf)";
    case 401:
    case 403:
      return "the proxy's own access rules refused it (nginx: allow/deny, auth_basic), not builder's token";
    case 404:
      return "nothing is served at this path: check the remote URL's path and the proxy's location blocks (see debian/nginx.conf)";
    default:
      if (status === 400 && /plain HTTP request was sent to HTTPS port/i.test(body)) {
        return 'the remote URL says http:// where the proxy speaks TLS: use https://';
      }
      return websocket
        ? 'the proxy does not pass WebSocket upgrades on /ws (nginx: proxy_http_version 1.1 and the Upgrade and Connection headers; see debian/nginx.conf)'
        : "see the proxy's error log";
  }
}

/**
 * One line for an HTTP answer that did not come from builder-server (no `x-builder-server` header and
 * no JSON body): the status, that a proxy answered, and the setting to look at. Undefined when the
 * answer is builder's own. Never includes the body: a proxy's HTML page is no message.
 */
export function foreignAnswer(
  status: number,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  body: string,
  opts: { websocket?: boolean } = {},
): string | undefined {
  if (headers[SERVER_HEADER] !== undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed !== null && typeof parsed === 'object') return undefined;
  } catch {
    // not JSON: not builder's
  }
  const text = STATUS_CODES[status];
  const what = text === undefined ? `HTTP ${status}` : `HTTP ${status} (${text})`;
  return `a proxy answered ${what}, not builder-server: ${hint(status, body, opts.websocket === true)}`;
}
