// The bare spawn rate's worker stand-in (bench/run.mjs, throughput): a Node process that does
// nothing but start `sh -c true` with piped output, `concurrency` at a time, as a host worker would
// (own process group, output read to the end), no server. Starts `jobs` of them twice: in a fresh
// process, then again warm (as builder's workers are measured). Before each round it waits for a
// line on stdin so the parent times all of them together; after each it prints the jobs done and
// the CPU seconds it and its (reaped) children used in that round. With `posix` as third argument
// it starts them as the worker does (posix_spawn, packages/worker/native), else with Node's
// child_process.
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

const line = () => new Promise((ok) => process.stdin.once('data', ok));
process.stdout.write('ready\n');
for (const round of ['cold', 'warm']) {
  await line();
  const before = cpuSeconds('self');
  next = 0;
  await Promise.all(Array.from({ length: concurrency }, lane));
  const cpu = cpuSeconds('self');
  process.stdout.write(`${round} ${next} cpu ${cpu.own - before.own} ${cpu.children - before.children}\n`);
}
process.exit(0);
