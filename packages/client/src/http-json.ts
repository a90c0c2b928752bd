import { CliError } from './errors.ts';
import { ExitCode } from './exit.ts';

/**
 * GET a page of the public site as JSON (`/api/…`) or as text. A refused connection is exit 4, a
 * 404 exit 3 with the server's reason, any other failure exit 1.
 */
export async function getSite(url: string, as: 'json' | 'text'): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: as === 'json' ? 'application/json' : '*/*' } });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    throw new CliError(ExitCode.Unreachable, `cannot reach ${new URL(url).origin}: ${cause}`);
  }
  const text = await res.text();
  if (!res.ok) {
    let reason = text.trim();
    try {
      reason = (JSON.parse(text) as { error?: string }).error ?? reason;
    } catch {
      // not JSON: the plain-text reason as it came
    }
    throw new CliError(res.status === 404 ? ExitCode.NotFound : ExitCode.RunFailed, `${url}: ${res.status} ${reason}`);
  }
  if (as === 'text') return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new CliError(ExitCode.RunFailed, `${url} did not answer JSON`);
  }
}
