import { lstatSync } from 'node:fs';
import type { RunResult } from '@builder/protocol';
import { describeError } from '../errors.ts';
import { type JobChild, startJobChild } from './job-child.ts';
import { groupStopper } from './process-group.ts';
import type { RunIO } from './types.ts';
import { ProcUsageSampler } from './usage.ts';

/** After the job exited, how long a pipe held by an escaped process may stay open (beyond the grace). */
const PIPE_LINGER_MS = 2000;

/**
 * The job's main process, shared by every executor: spawned in its own process group, output
 * piped to the console sinks (their backpressure pauses the pipes), TERM → grace → KILL to the
 * whole group on cancel or timeout, and the result only once the group is gone. For the jail
 * executor the process is `jexec …`, which execs into the jail, so the same group signals reach
 * the job; whatever left the group inside a sandbox dies with the sandbox's teardown.
 */
export function runJobProcess(
  command: string,
  args: readonly string[],
  opts: {
    cwd: string;
    env: Readonly<Record<string, string>>;
    /**
     * Written to the child's fd 6 (a pipe) and closed: how a sandbox whose environment is built
     * from a file gets the job's secrets without them touching a disk or an argument list.
     */
    fd6?: string;
    /** Leave the console sinks open when the process's output ends: another step of the job follows. */
    more?: boolean;
  },
  io: RunIO,
): Promise<RunResult> {
  return new Promise<RunResult>((resolve) => {
    let child: JobChild;
    try {
      child = startJobChild(command, args, { cwd: opts.cwd, env: opts.env, fd6: opts.fd6 !== undefined });
    } catch (err) {
      resolve({ kind: 'error', message: `cannot start ${command}: ${describeError(err)}` });
      return;
    }
    const pid = child.pid;
    if (pid === undefined) {
      child.once('error', (err: Error) =>
        resolve({ kind: 'error', message: `cannot start ${command}: ${describeError(err)}` }),
      );
      return;
    }
    io.started();
    const usage = new ProcUsageSampler(pid, !child.reportsExitCpu);
    const fd6 = child.fd6;
    if (fd6 && opts.fd6 !== undefined) {
      fd6.on('error', () => undefined); // a job that ends before reading it: nothing to deliver
      fd6.end(opts.fd6);
    }
    const { stdout, stderr } = child;
    stdout.pipe(io.stdout, { end: opts.more !== true });
    stderr.pipe(io.stderr, { end: opts.more !== true });

    const group = groupStopper(pid, io.killGraceMs, (text) => io.note(text));
    let readError: string | undefined;
    let lingerTimer: NodeJS.Timeout | undefined;
    const onReadError = (name: string) => (err: Error) => {
      if (readError !== undefined) return;
      readError = `cannot read the job's ${name}: ${describeError(err)}`;
      io.note(`[builder] ${readError}; stopping the job`);
      group.stop();
    };
    stdout.on('error', onReadError('stdout'));
    stderr.on('error', onReadError('stderr'));
    child.on('error', (err: Error) => io.log.warn('run.process_error', { error: err }));

    const onAbort = () => group.stop();
    if (io.signal.aborted) onAbort();
    else io.signal.addEventListener('abort', onAbort, { once: true });

    // A process that left the group (setsid, a daemon) can hold the pipes open; jail -r kills it
    // at teardown, but teardown waits for run() — so close our end after a while.
    const checkLinger = () => {
      if (stdout.isPaused() || stderr.isPaused()) {
        lingerTimer = setTimeout(checkLinger, PIPE_LINGER_MS);
        return;
      }
      io.note('[builder] the job exited but its output is still held open by a process outside its group; closing it');
      stdout.destroy();
      stderr.destroy();
    };

    child.once('exit', () => {
      const measured = usage.stop(child.exitCpuMs);
      if (measured) io.usage?.(measured);
      if (group.stop()) io.note('[builder] the job exited but left processes running in its group; stopping them');
      lingerTimer = setTimeout(checkLinger, io.killGraceMs + PIPE_LINGER_MS);
    });
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      if (lingerTimer) clearTimeout(lingerTimer);
      io.signal.removeEventListener('abort', onAbort);
      void group.settled().then(() => {
        group.dispose();
        if (readError !== undefined) resolve({ kind: 'error', message: readError });
        else if (code !== null) resolve({ kind: 'exited', code });
        else resolve({ kind: 'signalled', signal: signal ?? 'unknown' });
      });
    });
  });
}

/**
 * Hand the output dir to the artifact hook, once nothing of the job runs that could still change
 * it (the executor's duty): refused if the job replaced it by anything but a directory; a failure
 * of the hook itself is a console note, not a job result.
 */
export async function collectOutput(io: RunIO, outputDir: string): Promise<void> {
  const replaced = outputDirReplaced(outputDir);
  if (replaced) return io.refuseOutput(`the output dir was replaced by ${replaced}`);
  try {
    await io.collectOutput(outputDir);
  } catch (err) {
    io.note(`[builder] collecting ${outputDir} failed: ${describeError(err)}`);
  }
}

/** What the job left in place of its output dir if that is not a directory (absent is fine: no artifacts). */
function outputDirReplaced(dir: string): string | undefined {
  let st;
  try {
    st = lstatSync(dir, { throwIfNoEntry: false });
  } catch {
    return undefined; // unreadable: the upload says why
  }
  if (!st || st.isDirectory()) return undefined;
  return st.isSymbolicLink() ? 'a symbolic link' : 'something that is not a directory';
}
