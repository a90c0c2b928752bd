import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { nativeSpawn } from './native.ts';

/**
 * Signal a whole process group (the job and everything it started that did not
 * leave the group). Returns false when no process of the group is left.
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  // the native module answers ESRCH (the usual case, at every job's end) without an exception
  if (nativeSpawn) return nativeSpawn.killGroup(pgid, signal === 0 ? 0 : constants.signals[signal]) === 0;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    // ESRCH: nothing left. EPERM cannot happen for our own children short of pid reuse,
    // and then the group is not ours to signal anyway.
    return false;
  }
}

/**
 * Is any process of the group still alive? On Linux zombies do not count: an orphan that died
 * stays a zombie when nothing reaps it (pid 1 in many containers), yet it runs nothing.
 */
export function groupAlive(pgid: number): boolean {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return signalGroup(pgid, 0);
  }
  for (const entry of entries) {
    if (entry.charCodeAt(0) > 57) continue; // not a pid
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so split after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') return true;
  }
  return false;
}

export interface GroupStopper {
  /** TERM now, KILL after the grace period if anything of the group is left. True if this call sent TERM. */
  stop(): boolean;
  /** The group is gone: drop the pending KILL. */
  dispose(): void;
  /**
   * The job's main process is gone. Resolves once its group is: at once when nothing is left or no
   * stop is under way, else after the KILL — a leftover that ignores TERM must not outlive the run.
   */
  settled(): Promise<void>;
}

export function groupStopper(pgid: number, graceMs: number, note: (text: string) => void): GroupStopper {
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;
  let onKilled: (() => void) | undefined;
  return {
    stop() {
      if (stopping) return false;
      stopping = true;
      if (!signalGroup(pgid, 'SIGTERM')) return false;
      timer = setTimeout(() => {
        timer = undefined;
        if (signalGroup(pgid, 'SIGKILL'))
          note(`[builder] still running ${graceMs / 1000}s after SIGTERM: sent SIGKILL`);
        onKilled?.();
      }, graceMs);
      return true;
    },
    dispose() {
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
    settled() {
      if (!timer) return Promise.resolve();
      if (!groupAlive(pgid)) {
        clearTimeout(timer);
        timer = undefined;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => (onKilled = resolve));
    },
  };
}
