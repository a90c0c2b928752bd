import {
  Methods,
  ProtocolError,
  validate,
  type MethodName,
  type MethodParamsInput,
  type MethodResult,
} from '@builder/protocol';
import { loadTrust, type Trust, TrustFileError } from '@builder/protocol/net';
import { Connection } from '../connection.ts';
import { CliError } from '../errors.ts';
import { ExitCode } from '../exit.ts';

/** Where a command writes; process.stdout/stderr in the binary, buffers in tests. */
export interface Io {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Where `secret set` reads a value; process.stdin when absent. */
  stdin?: AsyncIterable<Buffer | string>;
}

/** The global options, resolved once (flags over environment over defaults). */
export interface GlobalOptions {
  remote: string;
  token: string | undefined;
  json: boolean;
  /** `--ca FILE`: a CA to trust for an https:// remote, besides the public ones. */
  ca?: string | undefined;
}

/** What every command gets: its global options, output, and a way to reach the server. */
export class Context {
  readonly io: Io;
  readonly globals: GlobalOptions;
  readonly now: () => number;

  constructor(io: Io, globals: GlobalOptions, now: () => number = Date.now) {
    this.io = io;
    this.globals = globals;
    this.now = now;
  }

  get json(): boolean {
    return this.globals.json;
  }

  /** A line on stdout. */
  out(line: string): void {
    this.io.stdout.write(`${line}\n`);
  }

  /** Raw text on stdout (console data). */
  write(text: string): void {
    this.io.stdout.write(text);
  }

  /** A line on stderr, for summaries and progress that must not mix with stdout data. */
  note(line: string): void {
    this.io.stderr.write(`${line}\n`);
  }

  /** A warning in the same shape as errors: `builder-client: …`. */
  warn(message: string): void {
    this.io.stderr.write(`builder-client: ${message}\n`);
  }

  /** One JSON document (or one line of a JSON-lines stream). */
  printJson(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value)}\n`);
  }

  /** Check a method's params before any connection is made, so usage errors never need a server. */
  checkParams<M extends MethodName>(method: M, params: MethodParamsInput<M>): void {
    try {
      validate(Methods[method].params, params, `${method} arguments`);
    } catch (error) {
      if (error instanceof ProtocolError) throw new CliError(ExitCode.Usage, error.message);
      throw error;
    }
  }

  #trust: Trust | undefined;

  /** The CAs to trust for an https:// remote; a `--ca` file that cannot be read is a usage error. */
  get trust(): Trust {
    if (this.#trust === undefined) {
      try {
        this.#trust = loadTrust(this.globals.ca);
      } catch (error) {
        if (error instanceof TrustFileError) throw new CliError(ExitCode.Usage, error.message);
        throw error;
      }
    }
    return this.#trust;
  }

  connect(): Promise<Connection> {
    const token = this.globals.token;
    if (!token) throw new CliError(ExitCode.Usage, 'no token: pass --token TOKEN or set BUILDER_TOKEN');
    return Connection.open({ remote: this.globals.remote, token, trust: this.trust });
  }

  /** Connect, make one call, close. */
  async rpc<M extends MethodName>(method: M, params: MethodParamsInput<M>): Promise<MethodResult<M>> {
    this.checkParams(method, params);
    const conn = await this.connect();
    try {
      return await conn.call(method, params);
    } finally {
      await conn.close();
    }
  }
}
