/**
 * Structured logging for every program: one JSON line per event
 * (`{"time","level","event",…fields}`), or a readable line on a terminal.
 * Events are `area.what_happened` (`run.finished`, `ws.hello_refused`); the ids
 * that say what it is about use the same names everywhere: `run`, `job`,
 * `attempt`, `worker`, `platform`, and `error` for what went wrong.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger that adds `fields` (e.g. run, job, attempt) to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** One JSON object per line; otherwise a readable line for a terminal. */
  json: boolean;
  /** The least severe level written (default info). */
  level?: LogLevel;
  /** Receives one complete line, newline included (default: standard error). */
  write?: (line: string) => void;
  now?: () => number;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(options: LoggerOptions): Logger {
  const min = RANK[options.level ?? 'info'];
  const now = options.now ?? Date.now;
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const format = options.json ? formatJson : formatPretty;
  const make = (bound: LogFields): Logger => {
    const emit = (level: LogLevel, event: string, fields?: LogFields): void => {
      if (RANK[level] < min) return;
      write(format(now(), level, event, fields ? { ...bound, ...fields } : bound));
    };
    return {
      debug: (event, fields) => emit('debug', event, fields),
      info: (event, fields) => emit('info', event, fields),
      warn: (event, fields) => emit('warn', event, fields),
      error: (event, fields) => emit('error', event, fields),
      child: (fields) => make({ ...bound, ...fields }),
    };
  };
  return make({});
}

/** For tests and embedding: drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};

function formatJson(ms: number, level: LogLevel, event: string, fields: LogFields): string {
  const out: Record<string, unknown> = { time: new Date(ms).toISOString(), level, event };
  for (const [k, v] of Object.entries(fields)) out[k] = plain(v);
  return `${JSON.stringify(out)}\n`;
}

function formatPretty(ms: number, level: LogLevel, event: string, fields: LogFields): string {
  const time = new Date(ms).toISOString().slice(11, 23);
  const extra = Object.entries(fields)
    .map(([k, v]) => {
      const p = plain(v);
      if (typeof p !== 'string') return `${k}=${JSON.stringify(p)}`;
      return `${k}=${/[\s"=]/.test(p) || p === '' ? JSON.stringify(p) : p}`;
    })
    .join(' ');
  return `${time} ${level.toUpperCase().padEnd(5)} ${event}${extra ? ` ${extra}` : ''}\n`;
}

/** An Error is logged as its message, with the errno code when it has one (JSON would make it `{}`). */
function plain(v: unknown): unknown {
  if (v instanceof Error) {
    const code = (v as Error & { code?: unknown }).code;
    return typeof code === 'string' ? `${v.message} [${code}]` : v.message;
  }
  return v;
}
