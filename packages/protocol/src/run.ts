import { z } from 'zod';

/**
 * The run state machine. Every transition the server makes is listed here;
 * anything else is refused (`canTransition`, checked by the server's store
 * before it writes a state).
 */
export const RunState = {
  Queued: 'queued',
  Assigned: 'assigned',
  Running: 'running',
  Succeeded: 'succeeded',
  Failed: 'failed',
  Timeout: 'timeout',
  Cancelled: 'cancelled',
  Lost: 'lost',
  Error: 'error',
} as const;
export type RunState = (typeof RunState)[keyof typeof RunState];
export const RUN_STATES = Object.values(RunState) as [RunState, ...RunState[]];

export const TRANSITIONS: Readonly<Record<RunState, readonly RunState[]>> = {
  // queued → queued is a retry being re-queued with a new attempt
  queued: ['assigned', 'cancelled'],
  assigned: ['running', 'queued', 'succeeded', 'failed', 'timeout', 'cancelled', 'lost', 'error'],
  running: ['queued', 'succeeded', 'failed', 'timeout', 'cancelled', 'lost', 'error'],
  succeeded: [],
  failed: [],
  timeout: [],
  cancelled: [],
  lost: [],
  error: [],
};

export function canTransition(from: RunState, to: RunState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isTerminal(state: RunState): boolean {
  return TRANSITIONS[state].length === 0;
}

export function isActive(state: RunState): boolean {
  return state === 'assigned' || state === 'running';
}

/** How one attempt ended, as the worker (or the server, for lost) saw it. */
export const RunResultSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('exited'), code: z.number().int().min(0).max(255) }),
  z.object({ kind: z.literal('signalled'), signal: z.string().min(1).max(32) }),
  z.object({ kind: z.literal('timeout') }),
  z.object({ kind: z.literal('cancelled'), reason: z.string().max(1024).optional() }),
  z.object({ kind: z.literal('lost') }),
  z.object({ kind: z.literal('error'), message: z.string().max(4096) }),
]);
export type RunResult = z.infer<typeof RunResultSchema>;

/** The terminal state a result puts a run in. */
export function stateForResult(result: RunResult): RunState {
  switch (result.kind) {
    case 'exited':
      return result.code === 0 ? 'succeeded' : 'failed';
    case 'signalled':
      return 'failed';
    case 'timeout':
      return 'timeout';
    case 'cancelled':
      return 'cancelled';
    case 'lost':
      return 'lost';
    case 'error':
      return 'error';
    default: {
      const never: never = result;
      throw new Error(`unknown result ${JSON.stringify(never)}`);
    }
  }
}

/** `exited 0`, `signalled SIGKILL`, `timeout`, `cancelled`, `lost`, `error: MESSAGE`. */
export function formatResult(result: RunResult): string {
  switch (result.kind) {
    case 'exited':
      return `exited ${result.code}`;
    case 'signalled':
      return `signalled ${result.signal}`;
    case 'timeout':
      return 'timeout';
    case 'cancelled':
      return result.reason ? `cancelled (${result.reason})` : 'cancelled';
    case 'lost':
      return 'lost';
    case 'error':
      return `error: ${result.message}`;
    default: {
      const never: never = result;
      throw new Error(`unknown result ${JSON.stringify(never)}`);
    }
  }
}

export function isSuccess(result: RunResult | null | undefined): boolean {
  return result?.kind === 'exited' && result.code === 0;
}
