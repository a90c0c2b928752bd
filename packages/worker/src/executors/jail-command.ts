import { spawn } from 'node:child_process';

/** Keep this much of a failed command's stderr for the error message. */
const MAX_STDERR = 2000;

/** A system command (zfs, jail, mount …) that did not succeed; the message names it and says what it printed. */
export class CommandError extends Error {
  readonly code = 'JAIL_COMMAND_FAILED' as const;
  readonly argv: readonly string[];
  /** null when it could not be started or was killed by a signal. */
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(argv: readonly string[], exitCode: number | null, stderr: string, how: string) {
    const detail = stderr.trim();
    super(`\`${argv.join(' ')}\` ${how}${detail ? `: ${detail}` : ''}`);
    this.name = 'CommandError';
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderr = detail;
  }
}

/** Runs one command to its end; resolves its stdout or rejects with a CommandError. */
export type CommandRunner = (argv: readonly string[]) => Promise<string>;

/** The real runner: no shell, the given environment (its PATH finds zfs, jail … — or the fakes in tests). */
export function commandRunner(env: NodeJS.ProcessEnv): CommandRunner {
  return (argv) =>
    new Promise((resolve, reject) => {
      const [command, ...args] = argv;
      if (command === undefined) throw new Error('empty command');
      const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        if (err.length < MAX_STDERR) err = (err + chunk).slice(0, MAX_STDERR);
      });
      child.once('error', (e) => reject(new CommandError(argv, null, '', `could not be started (${e.message})`)));
      child.once('close', (code, signal) => {
        if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
        else if (code !== null) reject(new CommandError(argv, code, err, `exited ${code}`));
        else reject(new CommandError(argv, null, err, `was killed by ${signal ?? 'a signal'}`));
      });
    });
}
