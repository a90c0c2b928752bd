// The bare spawn rate's worker stand-in (bench/run.mjs, throughput): a Node process that does
// nothing but start `sh -c true` with piped output, `concurrency` at a time, as a host worker would
// (own process group, output read to the end), no server. Waits for "go" on stdin so the parent
// times all of them together; prints the number of jobs done when finished, and the CPU seconds
// it used and its (reaped) children used. With `posix` as third argument it starts them as the
// worker does (posix_spawn, packages/worker/native), else with Node's child_process.
import { spawn } from 'node:child_process';
import { cpuSeconds } from './proc-cpu.mjs';

const [jobs, concurrency] = process.argv.slice(2, 4).map(Number);
const posix = process.argv[4] === 'posix';
// loaded only for that: the child_process baseline stays the small process it always was
const { nativeSpawn } = posix ? await import('../packages/worker/dist/executors/native.js') : {};
const { startJobChild } = posix ? await import('../packages/worker/dist/executors/job-child.js') : {};
if (posix && !nativeSpawn) throw new Error("the worker's posix_spawn is not built (packages/worker/native/build.mjs)");

function one() {
  return new Promise((ok, fail) => {
    const child = posix
      ? startJobChild('/bin/sh', ['-c', 'true'], { cwd: process.cwd(), env: process.env, fd6: false })
      : spawn('/bin/sh', ['-c', 'true'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    child.once('error', fail);
    child.once('close', (code) => (code === 0 ? ok() : fail(new Error(`sh exited with ${code}`))));
  });
}

let next = 0;
async function lane() {
  while (next < jobs) {
    next++;
    await one();
  }
}

process.stdout.write('ready\n');
process.stdin.once('data', async () => {
  await Promise.all(Array.from({ length: concurrency }, lane));
  const cpu = cpuSeconds('self');
  process.stdout.write(`done ${next} cpu ${cpu.own} ${cpu.children}\n`);
  process.exit(0);
});
