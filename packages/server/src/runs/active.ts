import type { SecretMask } from '../console/secret-mask.ts';

/** What the server keeps in memory about a run that is assigned or running. */
export interface ActiveRun {
  id: string;
  jobId: number;
  platform: string;
  attempt: number;
  worker: string;
  /** Next output sequence number expected from the worker. */
  nextSeq: number;
  /** Lease: when the run counts as lost unless its worker is heard from. */
  leaseUntil: number;
  cancelRequested: boolean;
  /** Masks the job's secrets in its output; null: the job has none; undefined: not looked up yet. */
  mask?: SecretMask | null;
  /** A carry recovered from the database, for the mask when it is made. */
  carry?: Buffer | null;
}

export class ActiveRuns {
  private readonly runs = new Map<string, ActiveRun>();
  /** Attempts taken back from workers that did not hold them (runs/reconcile.ts), since start. */
  readonly reclaimed = { assigned: 0, running: 0 };

  get(id: string): ActiveRun | undefined {
    return this.runs.get(id);
  }

  set(run: ActiveRun): void {
    this.runs.set(run.id, run);
  }

  delete(id: string): void {
    this.runs.delete(id);
  }

  all(): ActiveRun[] {
    return [...this.runs.values()];
  }

  /** Asked with every heartbeat of every worker: no copy of all active runs made for it. */
  ofWorker(name: string): ActiveRun[] {
    const out: ActiveRun[] = [];
    for (const r of this.runs.values()) if (r.worker === name) out.push(r);
    return out;
  }

  renew(worker: string, until: number): void {
    for (const r of this.runs.values()) if (r.worker === worker) r.leaseUntil = until;
  }

  expired(now: number): ActiveRun[] {
    const out: ActiveRun[] = [];
    for (const r of this.runs.values()) if (r.leaseUntil <= now) out.push(r);
    return out;
  }
}
