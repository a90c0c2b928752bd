import { runCli } from './program.ts';

// `builder-client logs RUN | head`: a closed pipe is the reader's choice, not an error
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
process.exitCode = code;
// Everything is closed by now; this only guards against a stray handle keeping the CLI alive.
setTimeout(() => process.exit(code), 2000).unref();
