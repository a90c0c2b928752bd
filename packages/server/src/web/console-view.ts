import type { Context } from '../context.ts';
import type { RunRow } from '../store/rows.ts';

/** The run page's console section as safe HTML: the tail of the log, paging back, live updates. */
export function renderConsoleSection(_ctx: Context, _run: RunRow, _query: URLSearchParams): string {
  return '<pre id="console"></pre>';
}
