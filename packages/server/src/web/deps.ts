import type { Context } from '../context.ts';

/**
 * What the public website reads: the stores, the console files, the clock and a few settings.
 * Never the run path's machinery (no lifecycle, no dispatch, no secrets, no blob writes).
 */
export type SiteDeps = Pick<
  Context,
  | 'db'
  | 'jobs'
  | 'runs'
  | 'platforms'
  | 'registry'
  | 'workers'
  | 'artifacts'
  | 'inputs'
  | 'hooks'
  | 'logs'
  | 'clock'
  | 'version'
  | 'publicUrl'
  | 'provenanceKey'
>;

/** The live console follows a run's events and waits for an open batch before trusting its end. */
export type ConsoleDeps = SiteDeps & Pick<Context, 'events' | 'commit' | 'logger'>;
