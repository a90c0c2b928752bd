import type { RunState } from '@builder/protocol';
import type { SiteDeps } from '../deps.ts';
import { runView } from '../../runs/views.ts';
import { recentFinished } from '../../store/site-queries.ts';
import { html } from '../html.ts';
import type { Page } from './page.ts';
import { runTable } from './run-cells.ts';

/** Every way a run can end that needs a look; cancelled is someone's decision, not a failure. */
export const FAILED_STATES: readonly RunState[] = ['failed', 'timeout', 'lost', 'error'];
const LIMIT = 100;

/** `/failed`: the most recently finished runs that did not succeed, across jobs. */
export function failedPage(ctx: SiteDeps): Page {
  const runs = recentFinished(ctx.db, FAILED_STATES, LIMIT);
  const data = { runs: runs.map((r) => runView(ctx, r)) };
  const body = html`<h1>Failed runs</h1>
    <p class="muted">The last ${LIMIT} runs that ended ${FAILED_STATES.join(', ')}, newest first.</p>
    ${runTable(runs, ctx.clock.now(), { job: true })}`;
  return { meta: { title: 'Failed runs' }, data, body };
}
