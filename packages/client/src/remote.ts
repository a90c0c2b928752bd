import { CliError } from './errors.ts';

/** `http://host:8330` → `ws://host:8330/ws`, `https://h/builder` → `wss://h/builder/ws`; ws(s) URLs are accepted too. */
export function webSocketUrl(remote: string): string {
  let url: URL;
  try {
    url = new URL(remote);
  } catch {
    throw new CliError(
      2,
      `invalid remote URL ${JSON.stringify(remote)}: expected http://HOST:PORT or https://HOST/PATH`,
    );
  }
  switch (url.protocol) {
    case 'http:':
    case 'ws:':
      url.protocol = 'ws:';
      break;
    case 'https:':
    case 'wss:':
      url.protocol = 'wss:';
      break;
    default:
      throw new CliError(2, `invalid remote URL ${JSON.stringify(remote)}: the scheme must be http, https, ws or wss`);
  }
  if (!url.pathname.endsWith('/ws')) {
    url.pathname = url.pathname.endsWith('/') ? `${url.pathname}ws` : `${url.pathname}/ws`;
  }
  url.hash = '';
  return url.toString();
}
