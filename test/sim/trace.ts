/**
 * What happened in a schedule, kept cheaply (the last entries in a ring, formatted only when a
 * seed fails) so a failure prints the events that led to it, and the first failure of the schedule.
 */
import { decodeOutputFrame } from '@builder/protocol';
import type { Frame, SimSocket } from './network.ts';
import type { SimTime } from './time.ts';

type Entry =
  | { t: number; kind: 'note'; who: string; text: string }
  | { t: number; kind: 'log'; who: string; level: string; msg: string; fields: Record<string, unknown> | undefined }
  | { t: number; kind: 'frame'; from: SimSocket; to: SimSocket; frame: Frame };

/** Entries kept; BUILDER_SIM_TRACE=N keeps more, to look further back when replaying a seed. */
const KEEP = Number(process.env.BUILDER_SIM_TRACE ?? 200);

export class Trace {
  failure: string | undefined;
  readonly numbers = new Map<string, number>();
  private readonly ring: Entry[] = [];
  private next = 0;

  constructor(private readonly time: SimTime) {}

  /** The first broken invariant wins: later ones are usually its consequences. */
  fail(what: string): void {
    if (this.failure !== undefined) return;
    this.failure = `t=${this.secs(this.time.now)} ${this.ids(what)}`;
    this.note('sim', `FAILED: ${what}`);
  }

  note(who: string, text: string): void {
    this.add({ t: this.time.now, kind: 'note', who, text });
  }

  log(who: string, level: string, msg: string, fields: Record<string, unknown> | undefined): void {
    if (level === 'debug') return;
    this.add({ t: this.time.now, kind: 'log', who, level, msg, fields });
  }

  frame(from: SimSocket, to: SimSocket, frame: Frame): void {
    if (frame.kind === 'ping' || frame.kind === 'pong') return; // liveness chatter: its effects are logged
    this.add({ t: this.time.now, kind: 'frame', from, to, frame });
  }

  /** The last `n` entries, oldest first, one line each. */
  last(n: number): string[] {
    const all = [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
    return all.slice(-n).map((e) => `${this.secs(e.t).padStart(8)} ${this.format(e)}`);
  }

  /** A running hash of when each entry happened and its size: two replays that differ anywhere differ here. */
  hash = 0;

  private add(e: Entry): void {
    const size =
      e.kind === 'frame' ? (e.frame.kind === 'data' ? e.frame.data.length : 1) : e.kind === 'log' ? e.msg.length : 0;
    this.hash = (Math.imul(this.hash, 31) + Math.round(e.t * 1000) + size) | 0;
    if (this.ring.length < KEEP) this.ring.push(e);
    else this.ring[this.next] = e;
    this.next = (this.next + 1) % KEEP;
  }

  private secs(t: number): string {
    return ((t - START) / 1000).toFixed(3);
  }

  private format(e: Entry): string {
    if (e.kind === 'note') return `${e.who}: ${e.text}`;
    if (e.kind === 'log') return `${e.who} ${e.level} ${e.msg} ${this.ids(JSON.stringify(e.fields ?? {}))}`;
    const dir = `${e.from.owner} → ${e.to.owner} [${e.from.label}]`;
    const f = e.frame;
    if (f.kind !== 'data') return `${dir} ${f.kind}${'code' in f ? ` ${f.code}` : ''}`;
    if (f.binary) {
      try {
        const { header, payload } = decodeOutputFrame(f.data);
        return `${dir} output ${this.ids(header.runId)}/${header.attempt} seq ${header.seq} ${JSON.stringify(payload.toString())}`;
      } catch {
        return `${dir} binary ${f.data.length} bytes`;
      }
    }
    return `${dir} ${this.ids(summarise(f.data.toString()))}`;
  }

  label(id: string): string {
    return this.ids(id);
  }

  /** Run ids as `#number` (UUIDs differ from replay to replay; numbers do not). */
  private ids(text: string): string {
    return text.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (id) =>
      this.numbers.has(id) ? `#${this.numbers.get(id)}` : id.slice(0, 8),
    );
  }
}

/** Simulated time starts here (a fixed date, so traces read the same on every replay). */
export const START = Date.UTC(2026, 0, 1);

function summarise(text: string): string {
  try {
    const m = JSON.parse(text) as Record<string, unknown>;
    const { type, ...rest } = m;
    delete rest.token;
    if (type === 'assign') {
      const run = rest.run as { runId: string; attempt: number };
      return `assign ${run.runId}/${run.attempt}`;
    }
    if (type === 'hello') {
      const w = rest.worker as { running: unknown };
      return `hello running=${JSON.stringify(w.running)}`;
    }
    return `${String(type)} ${JSON.stringify(rest)}`;
  } catch {
    return text.slice(0, 200);
  }
}
