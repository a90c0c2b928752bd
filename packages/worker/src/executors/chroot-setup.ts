/**
 * The shell the sandbox is made of, run by the host's /bin/sh as root, and the bubblewrap
 * command line it starts. No job data is ever in their environment or command line beyond
 * fixed-format values the executor checked (paths, a host name, numbers): the job's own
 * environment goes through a file that only the shell inside the sandbox reads.
 *
 * Who does what: the host shell mounts the overlay (as the host's root, in a private mount
 * namespace of its own, so it vanishes with the sandbox) and writes the user namespace's id map;
 * bubblewrap (Debian's `bubblewrap`, Flatpak's sandbox) does everything inside — a fresh user,
 * pid, ipc, uts, cgroup (and net) namespace, pivot_root into the overlay with the old root
 * detached, /proc with its dangerous parts read-only or masked, /dev, /tmp, the capability
 * bounding set, no_new_privs and the seccomp filter.
 */
import { existsSync } from 'node:fs';

/** Inside every sandbox: the run's directory (root's), the job's cwd and its output dir. */
export const INSIDE = {
  dir: '/builder',
  work: '/builder/work',
  output: '/builder/output',
  source: '/builder/source',
  input: '/builder/input',
} as const;

/**
 * `sh -c ENTER entry N CGROUP_PROCS… unshare …`: put this process into the run's cgroup(s)
 * (writing 0 means "myself"), then exec unshare, so the namespace and everything in it is
 * accounted and limited from the first instruction.
 */
export const ENTER = `
n=$1; shift
while [ "$n" -gt 0 ]; do
  echo 0 >"$1" || exit 125
  shift; n=$((n - 1))
done
exec "$@"`;

/**
 * `unshare --mount --propagation private sh -c SETUP setup RUN ROOT MNT NET START COUNT UID GID BWRAP_ARGS…`
 *
 * Mounts the overlay on MNT and RUN/builder on its /builder, then starts bubblewrap as the
 * host uid START+UID (0 inside for a root job, 65534 for nobody): an unprivileged process, whose
 * new user namespace gets its map — inside 0…COUNT-1 is the host's START… — from this shell while
 * bwrap waits on RUN/go (`--userns-block-fd`). bwrap and the sandbox get a session of their own,
 * so the executor's TERM to this shell's process group is forwarded to the job's session by the
 * trap below and never reaches bwrap, whose death would take the job's grace period with it
 * (`--die-with-parent`). KILL of this shell ends bwrap and with it the whole pid namespace.
 *
 * MNT is one directory for every sandbox (each mounts it in its own namespace) where bwrap, an
 * unprivileged uid resolving paths before its pivot, can reach it: the worker's --work-dir may
 * sit under a directory only root may enter.
 *
 * Errors go to RUN/setup.log, bwrap's own too; the job's stderr is handed over as fd 9 and the
 * job's first act (INNER) is to write RUN/started through fd 8, which tells the executor the
 * sandbox was complete. Exits with the job's status (128+N: killed by signal N).
 */
export const SETUP = `
set -eu
run=$1 root=$2 m=$3 net=$4 start=$5 count=$6 uid=$7 gid=$8
shift 8
exec 3>&2 2>"$run/setup.log"
mount -t overlay overlay -o "lowerdir=$root,upperdir=$run/upper,workdir=$run/ovl,nodev" "$m"
mount --bind "$run/builder" "$m/builder"
if [ "$net" = 1 ]; then
  cp -L /etc/resolv.conf "$m/etc/resolv.conf" && chown "$start:$start" "$m/etc/resolv.conf" || :
fi
mkfifo -m 600 "$run/info" "$run/go"
(exec setsid setpriv --reuid=$((start + uid)) --regid=$((start + gid)) --clear-groups bwrap "$@" \\
  4>"$run/info" 5<"$run/go" 7<"$run/seccomp" 8>"$run/started" 9>&3 3>&-) &
bw=$!
child=
# before the job runs, a signal ends the setup (bwrap dies with its parent); then it goes to the job
forward() { if [ -n "$child" ]; then kill -s "$1" -- "-$child" 2>/dev/null || :; else exit 143; fi; }
trap 'forward TERM' TERM
trap 'forward INT' INT
trap 'forward HUP' HUP
exec 4<"$run/info" 5>"$run/go"
# to its end: bwrap writes more after the pid, and dies of SIGPIPE if nobody reads it
while IFS= read -r line <&4; do
  case $line in *'"child-pid"'*) child=\${line##*: }; child=\${child%,} ;; esac
done
if [ -z "$child" ]; then
  wait $bw || exit $?
  exit 125
fi
echo "0 $start $count" >"/proc/$child/uid_map"
echo "0 $start $count" >"/proc/$child/gid_map"
echo go >&5
exec 4<&- 5>&- 2>&3 3>&-
set +e
while :; do
  wait $bw
  rc=$?
  kill -0 $bw 2>/dev/null || break
done
exit $rc`;

/**
 * Run inside by the base's /bin/sh, as the job's user, with nothing in its environment: mark
 * the sandbox as started, give the job its stderr, take the job's secrets from the pipe on fd 6
 * when the worker passed one (read through the inherited descriptor: they never touch a file),
 * close descriptors 3-9 (bwrap passes on what it was given, the fifo it waited on among them; dash
 * can name no higher ones, and the worker itself opens none there), read the step's environment
 * (the file named by the first argument), add the secrets, start it.
 */
export const INNER = `printf 1 >&8; exec 2>&9
s=; if [ -e /proc/self/fd/6 ]; then s=$(cat <&6) || exit 125; fi
for f in /proc/self/fd/*; do n=\${f##*/}; case $n in [3-9]) eval "exec $n>&-" ;; esac; done
e=$1; shift
. "$e" && unset e && eval "$s" && unset s && exec "$@"`;

/** A step's files in /builder: the build (the job's script) and the prepare step before it. */
export const STEP_FILES = {
  build: { script: 'script.sh', env: 'env' },
  prepare: { script: 'prepare.sh', env: 'prepare-env' },
} as const;
export type Step = keyof typeof STEP_FILES;

/** What a root job keeps (inside its user namespace only): what apt, dpkg and a package build use. */
export const ROOT_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_AUDIT_WRITE',
  'CAP_SETFCAP',
] as const;

/** Parts of /proc that container runtimes mask (read as empty) or make read-only. */
const PROC_READ_ONLY = ['/proc/sys', '/proc/sysrq-trigger', '/proc/irq', '/proc/bus', '/proc/fs'];
const PROC_MASKED_FILES = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/latency_stats', '/proc/kallsyms'];
const PROC_MASKED_DIRS = ['/proc/acpi', '/proc/scsi'];

export interface SandboxSpec {
  readonly hostname: string;
  readonly network: boolean;
  readonly asRoot: boolean;
  /** The script starts with #!: run it directly, not through /bin/sh. */
  readonly direct: boolean;
  /** Which of the job's steps (default the build: the job's script). */
  readonly step?: Step;
}

/**
 * bwrap's arguments. Its fds come from SETUP: 4 info (child pid), 5 the user-namespace go, 7 the
 * seccomp program, 8 and 9 for INNER. Sources of binds are host paths resolved before the
 * pivot: /proc/sys is the same tree in every procfs (its values follow the reader's
 * namespaces), so binding the host's read-only changes nothing but writability.
 */
export function bwrapArgs(spec: SandboxSpec, merged: string): string[] {
  const a = ['--unshare-user', '--userns-block-fd', '5', '--info-fd', '4'];
  a.push('--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup');
  if (!spec.network) a.push('--unshare-net');
  a.push('--die-with-parent', '--new-session', '--hostname', spec.hostname);
  a.push('--bind', merged, '/');
  a.push('--proc', '/proc');
  // what this kernel has (the host's /proc shows the same entries as the sandbox's will)
  for (const p of PROC_READ_ONLY.filter(existsSync)) a.push('--ro-bind', p, p);
  for (const p of PROC_MASKED_FILES.filter(existsSync)) a.push('--ro-bind', '/dev/null', p);
  for (const p of PROC_MASKED_DIRS.filter(existsSync)) a.push('--tmpfs', p, '--remount-ro', p);
  a.push('--dev', '/dev', '--chmod', '1777', '/dev/shm');
  a.push('--tmpfs', '/tmp', '--chmod', '1777', '/tmp');
  a.push('--seccomp', '7', '--cap-drop', 'ALL');
  if (spec.asRoot) for (const cap of ROOT_CAPS) a.push('--cap-add', cap);
  a.push('--clearenv', '--chdir', INSIDE.work);
  const files = STEP_FILES[spec.step ?? 'build'];
  const script = `${INSIDE.dir}/${files.script}`;
  const env = `${INSIDE.dir}/${files.env}`;
  a.push('/bin/sh', '-c', INNER, 'job', env, ...(spec.direct ? [script] : ['/bin/sh', script]));
  return a;
}

/** `export K='v'` lines for the job's environment; names that are not shell names are dropped. */
export function envFile(env: Readonly<Record<string, string>>): string {
  let text = '';
  for (const [k, v] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) continue;
    text += `export ${k}='${v.replaceAll("'", "'\\''")}'\n`;
  }
  return text;
}
