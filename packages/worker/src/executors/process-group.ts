/**
 * Signal a whole process group (the job and everything it started that did not
 * leave the group). Returns false when no process of the group is left.
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    // ESRCH: nothing left. EPERM cannot happen for our own children short of pid reuse,
    // and then the group is not ours to signal anyway.
    return false;
  }
}

export interface GroupStopper {
  /** TERM now, KILL after the grace period if anything of the group is left. True if this call sent TERM. */
  stop(): boolean;
  /** The group is gone: drop the pending KILL. */
  dispose(): void;
}

export function groupStopper(pgid: number, graceMs: number, note: (text: string) => void): GroupStopper {
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;
  return {
    stop() {
      if (stopping) return false;
      stopping = true;
      if (!signalGroup(pgid, 'SIGTERM')) return false;
      timer = setTimeout(() => {
        timer = undefined;
        if (signalGroup(pgid, 'SIGKILL')) note(`[builder] still running ${graceMs / 1000}s after SIGTERM: sent SIGKILL`);
      }, graceMs);
      return true;
    },
    dispose() {
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}
