/**
 * The shell the sandbox is made of, as two snippets run by the host's /bin/sh (as root, with
 * the worker's tools: mount, mknod, chroot, ip). No job data is ever in their environment or
 * command line beyond fixed-format values the executor checked (paths, a host name, numbers):
 * the job's own environment goes through a file that only the shell inside the chroot reads.
 */

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
 * `unshare --mount --pid --fork --uts --ipc [--net] --kill-child --propagation private
 *    sh -c SETUP setup RUN ROOT HOSTNAME NET UID GID DIRECT DEV`
 *
 * DEV is a directory made once per worker (devTemplate()) with the device nodes null, zero,
 * full, random, urandom, tty, the fd/stdin/stdout/stderr links and shm/: one `cp -a` into a
 * fresh tmpfs is much cheaper than a mknod per node per job.
 *
 * Runs as pid 1 of the new pid namespace, in a private mount namespace: every mount below
 * exists only there and vanishes when the namespace does. Its errors go to RUN/setup.log; it
 * touches RUN/ready once the sandbox is complete, so the executor can tell a setup failure
 * (an `error:` result) from the job failing. Then it starts the job chrooted, as UID:GID,
 * forwards TERM/INT/HUP to it, and exits with its status (pid 1 cannot die of a signal it does
 * not handle, hence no `exec`); when it exits the kernel kills whatever is left in the namespace.
 */
export const SETUP = `
set -eu
run=$1 root=$2 host=$3 net=$4 uid=$5 gid=$6 direct=$7 dev=$8
exec 3>&2 2>"$run/setup.log"
m=$run/merged
mount -t overlay overlay -o "lowerdir=$root,upperdir=$run/upper,workdir=$run/ovl" "$m"
mount -t proc -o nosuid,nodev,noexec proc "$m/proc"
mount -t tmpfs -o nosuid,noexec,mode=755,size=64k tmpfs "$m/dev"
cp -a "$dev/." "$m/dev/"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$m/tmp"
mkdir -p "$m/builder"
mount --bind "$run/builder" "$m/builder"
echo "$host" >/proc/sys/kernel/hostname
if [ "$net" = 1 ]; then
  cp -L /etc/resolv.conf "$m/etc/resolv.conf" 2>/dev/null || :
else
  ip link set lo up 2>/dev/null || :
fi
: >"$run/ready"
exec 2>&3 3>&-
set +e
CAPS=+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,+setpcap,+net_bind_service,+sys_chroot,+audit_write,+setfcap
if [ "$direct" = 1 ]; then set -- /builder/script.sh; else set -- /bin/sh /builder/script.sh; fi
trap 'kill -TERM $c 2>/dev/null' TERM INT HUP
# no_new_privs (suid binaries of the base do not raise a job's rights) and, for a root job, only
# the capabilities a package build needs: no mknod, mount, module loading, raw I/O, ptrace …
priv=
if [ -x "$m/usr/bin/setpriv" ]; then
  priv="/usr/bin/setpriv --no-new-privs --inh-caps=-all --bounding-set=-all,$CAPS"
fi
chroot --userspec="$uid:$gid" --groups="$gid" "$m" $priv /usr/bin/env -i /bin/sh -c \\
  '. /builder/env && cd /builder/work && exec "$@"' job "$@" &
c=$!
while :; do
  wait $c
  rc=$?
  kill -0 $c 2>/dev/null || break
done
exit $rc`;

/** `export K='v'` lines for the job's environment; names that are not shell names are dropped. */
export function envFile(env: Readonly<Record<string, string>>): string {
  let text = '';
  for (const [k, v] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) continue;
    text += `export ${k}='${v.replaceAll("'", "'\\''")}'\n`;
  }
  return text;
}

/** Made once by the executor: what `cp -a` copies into each sandbox's /dev tmpfs. */
export const DEV_TEMPLATE = `
set -eu
d=$1
rm -rf "$d.tmp"
mkdir -m 755 "$d.tmp"
cd "$d.tmp"
mknod -m 666 null c 1 3
mknod -m 666 zero c 1 5
mknod -m 666 full c 1 7
mknod -m 666 random c 1 8
mknod -m 666 urandom c 1 9
mknod -m 666 tty c 5 0
ln -s /proc/self/fd fd
ln -s /proc/self/fd/0 stdin
ln -s /proc/self/fd/1 stdout
ln -s /proc/self/fd/2 stderr
mkdir -m 1777 shm
cd /
rm -rf "$d"
mv "$d.tmp" "$d"`;
