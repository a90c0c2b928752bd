// Builds native/spawn.node, the worker's posix_spawn for jobs (spawn.c), at install. Linux only,
// with the C compiler and Node's headers that native addons need anyway (better-sqlite3). Without
// them the worker starts jobs with Node's child_process, only slower: a skipped build is said,
// never fatal. CC overrides the compiler.
import { execFileSync } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';

const here = import.meta.dirname;
const target = join(here, 'spawn.node');
const say = (text) => console.log(`builder-worker native spawn: ${text}`);

function headers() {
  const candidates = [
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
    join(dirname(process.execPath), '..', 'include', 'node'),
  ];
  return candidates.find((dir) => dir && existsSync(join(dir, 'node_api.h')));
}

if (process.platform !== 'linux') {
  say(`not built on ${process.platform}: jobs start through child_process`);
} else {
  const include = headers();
  if (!include) {
    say("not built: Node's headers (node_api.h) not found; set npm_config_nodedir. Jobs start through child_process");
  } else {
    const tmp = `${target}.${process.pid}.tmp`;
    try {
      const cc = process.env.CC || 'cc';
      execFileSync(cc, ['-O2', '-Wall', '-shared', '-fPIC', '-I', include, '-o', tmp, join(here, 'spawn.c')], {
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      renameSync(tmp, target);
      say(`built ${target}`);
    } catch (err) {
      rmSync(tmp, { force: true });
      say(`not built (${err.message.split('\n')[0]}): jobs start through child_process`);
    }
  }
}
