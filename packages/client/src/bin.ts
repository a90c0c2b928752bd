import { runCli } from './program.ts';

const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
process.exitCode = code;
// Everything is closed by now; this only guards against a stray handle keeping the CLI alive.
setTimeout(() => process.exit(code), 2000).unref();
