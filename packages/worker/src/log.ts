export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** A logger that adds `fields` (e.g. runId, job, attempt) to every line. */
  child(fields: Fields): Logger;
}

export interface LoggerOptions {
  /** Receives one complete line, newline included. */
  write: (line: string) => void;
  /** One JSON object per line; otherwise a readable line for a terminal. */
  json: boolean;
  level?: Level;
  now?: () => number;
}

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(options: LoggerOptions): Logger {
  const min = RANK[options.level ?? 'info'];
  const now = options.now ?? Date.now;
  const format = options.json ? formatJson : formatPretty;
  const make = (bound: Fields): Logger => {
    const emit = (level: Level, msg: string, fields?: Fields): void => {
      if (RANK[level] < min) return;
      options.write(format(now(), level, msg, fields ? { ...bound, ...fields } : bound));
    };
    return {
      debug: (msg, fields) => emit('debug', msg, fields),
      info: (msg, fields) => emit('info', msg, fields),
      warn: (msg, fields) => emit('warn', msg, fields),
      error: (msg, fields) => emit('error', msg, fields),
      child: (fields) => make({ ...bound, ...fields }),
    };
  };
  return make({});
}

/** For tests and embedding: drops everything. */
export function nullLogger(): Logger {
  const log: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => log };
  return log;
}

function formatJson(ts: number, level: Level, msg: string, fields: Fields): string {
  const out: Record<string, unknown> = { ts: new Date(ts).toISOString(), level, msg };
  for (const [k, v] of Object.entries(fields)) out[k] = plain(v);
  return `${JSON.stringify(out)}\n`;
}

function formatPretty(ts: number, level: Level, msg: string, fields: Fields): string {
  const time = new Date(ts).toISOString().slice(11, 23);
  const extra = Object.entries(fields)
    .map(([k, v]) => {
      const p = plain(v);
      if (typeof p !== 'string') return `${k}=${JSON.stringify(p)}`;
      return `${k}=${/[\s"=]/.test(p) || p === '' ? JSON.stringify(p) : p}`;
    })
    .join(' ');
  return `${time} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? ` ${extra}` : ''}\n`;
}

function plain(v: unknown): unknown {
  if (v instanceof Error) {
    const code = (v as NodeJS.ErrnoException).code;
    return code ? `${v.message} [${code}]` : v.message;
  }
  return v;
}
