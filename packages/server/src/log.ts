/** Structured logging: one JSON line per event, or a readable line on a TTY. */
export type LogFields = Record<string, unknown>;

export interface Logger {
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  debug(event: string, fields?: LogFields): void;
}

export function createLogger(opts: { json: boolean; debug?: boolean; out?: NodeJS.WritableStream }): Logger {
  const out = opts.out ?? process.stderr;
  const write = (level: string, event: string, fields: LogFields = {}) => {
    if (level === 'debug' && !opts.debug) return;
    const time = new Date().toISOString();
    if (opts.json) {
      out.write(`${JSON.stringify({ time, level, event, ...fields })}\n`);
    } else {
      const rest = Object.entries(fields)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      out.write(`${time.slice(11, 23)} ${level.padEnd(5)} ${event}${rest ? ` ${rest}` : ''}\n`);
    }
  };
  return {
    info: (e, f) => write('info', e, f),
    warn: (e, f) => write('warn', e, f),
    error: (e, f) => write('error', e, f),
    debug: (e, f) => write('debug', e, f),
  };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {}, debug() {} };
