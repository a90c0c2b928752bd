import { main } from './cli.ts';

const outcome = await main(process.argv.slice(2), process.env);
if (outcome.reraise) {
  // Handlers are gone: the default action ends us, and our parent sees the signal.
  process.kill(process.pid, outcome.reraise);
} else {
  process.exit(outcome.exitCode);
}
