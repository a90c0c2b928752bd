import type { Logger } from '@builder/protocol';

export interface SignalHandling {
  /** The signal that forced the stop, to be re-raised once everything is reported. */
  readonly forcedBy: NodeJS.Signals | undefined;
  dispose(): void;
}

const SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * Two stages, as operators expect: the first SIGTERM/SIGINT drains (finish
 * what runs, take nothing new), the second cancels the jobs and stops; a third
 * exits at once.
 */
export function handleSignals(deps: { log: Logger; drain: () => void; force: () => void }): SignalHandling {
  let count = 0;
  let forcedBy: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    count++;
    if (count === 1) {
      deps.log.warn('signal.drain', { signal, hint: 'send it again to cancel running jobs' });
      deps.drain();
    } else if (count === 2) {
      forcedBy = signal;
      deps.log.warn('signal.cancel', { signal, hint: 'cancelling running jobs' });
      deps.force();
    } else {
      deps.log.error('signal.exit', { signal, hint: 'a third signal: exiting now' });
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  return {
    get forcedBy() {
      return forcedBy;
    },
    dispose() {
      for (const s of SIGNALS) process.off(s, onSignal);
    },
  };
}
