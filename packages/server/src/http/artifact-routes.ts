import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../context.ts';

/**
 * Artifact transfers: `PUT /artifacts/RUN/ATTEMPT` (worker), `PUT /upload/JOB` (admin) and
 * downloads `GET /job/J/run/N/artifacts/PATH`.
 */
export function handleArtifactRoutes(_ctx: Context, _req: IncomingMessage, _res: ServerResponse, _url: URL): boolean {
  return false;
}
