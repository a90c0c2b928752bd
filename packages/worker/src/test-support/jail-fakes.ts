import { chmodSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Stand-ins for the FreeBSD tools the jail executor runs, for tests on any Unix. Each records its
 * command line in `<dir>/log` and fails (exit 1, a message on stderr) when the line starts with
 * one of the `|`-separated prefixes in $FAKE_FAIL. They keep just enough state (jails, mounts,
 * clones, aliases) under `<dir>/state` for teardown and cleanup() to find things; `jexec` runs its
 * command on the host in the jail's path, as the real one runs it in the jail's /.
 */
const FAKE = String.raw`#!/bin/sh
export PATH=/usr/bin:/bin
D='@DIR@'
S="$D/state"
name=$(basename "$0")
line="$name $*"
printf '%s\n' "$line" >> "$D/log"
if [ -n "$FAKE_FAIL" ]; then
  old_ifs=$IFS; IFS='|'
  for f in $FAKE_FAIL; do
    case "$line" in "$f"*) echo "$name: simulated failure of '$f'" >&2; exit 1 ;; esac
  done
  IFS=$old_ifs
fi
key() { printf '%s' "$1" | tr '/' '%'; }
case "$name" in
zfs)
  case "$1" in
  clone) mp=\${3#mountpoint=}; mkdir -p "$mp" && cp -a "$D/snapshot/." "$mp" && printf '%s' "$mp" > "$S/zfs/$(key "$5")" ;;
  destroy) f="$S/zfs/$(key "$3")"; [ -f "$f" ] || { echo "cannot open '$3': dataset does not exist" >&2; exit 1; }
    rm -rf "$(cat "$f")" "$f" ;;
  list) echo "$7"; for f in "$S"/zfs/*; do [ -f "$f" ] && basename "$f" | tr '%' '/'; done ;;
  esac ;;
jail)
  case "$1" in
  -c) for a in "$@"; do case "$a" in name=*) n=\${a#name=} ;; path=*) p=\${a#path=} ;; esac; done
    printf '%s' "$p" > "$S/jails/$n" ;;
  -r) [ -f "$S/jails/$2" ] || { echo "jail: \"$2\" not found" >&2; exit 1; }; rm "$S/jails/$2" ;;
  esac ;;
jls) ls "$S/jails" ;;
jexec)
  [ "$1" = -U ] && shift 2
  [ -f "$S/jails/$1" ] || { echo "jexec: jail \"$1\" not found" >&2; exit 1; }
  cd "$(cat "$S/jails/$1")" && shift && exec "$@" ;;
mount)
  if [ "$1" = -p ]; then cat "$S/mounts"; else echo "devfs $6 devfs rw 0 0" >> "$S/mounts"; fi ;;
umount) grep -v " $2 " "$S/mounts" > "$S/mounts.new"; mv "$S/mounts.new" "$S/mounts" ;;
ifconfig)
  case "$4" in
  alias) echo "\${3%/32}" >> "$S/aliases" ;;
  -alias) grep -vx "$3" "$S/aliases" > "$S/aliases.new"; mv "$S/aliases.new" "$S/aliases" ;;
  *) echo "$1: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> metric 0 mtu 16384"
     while read -r a; do echo "	inet $a netmask 0xffffffff"; done < "$S/aliases" ;;
  esac ;;
cp) exec cp "$@" ;;
rm) exec rm "$@" ;;
chflags) ;;
esac
`;

export const FAKE_COMMANDS = ['zfs', 'jail', 'jls', 'jexec', 'mount', 'umount', 'ifconfig', 'cp', 'rm', 'chflags'];

export interface Fakes {
  readonly dir: string;
  /** Put first on the executor's PATH. */
  readonly bin: string;
  /** What the fake `zfs clone` copies and the copy mode's --jail-base-dir: a passwd with the jail user. */
  readonly base: string;
  /** Every command line run so far, in order. */
  log(): string[];
}

export function makeFakes(user = 'builder'): Fakes {
  const dir = mkdtempSync(join(tmpdir(), 'builder-jail-'));
  const bin = join(dir, 'bin');
  const base = join(dir, 'snapshot');
  for (const sub of ['bin', 'snapshot/etc', 'snapshot/dev', 'state/zfs', 'state/jails']) {
    mkdirSync(join(dir, sub), { recursive: true });
  }
  writeFileSync(join(dir, 'state/mounts'), '');
  writeFileSync(join(dir, 'state/aliases'), '');
  writeFileSync(join(dir, 'log'), '');
  // the uid the tests run as, so chown works without root
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  writeFileSync(
    join(base, 'etc/passwd'),
    `root:*:0:0::/root:/bin/sh\n${user}:*:${uid}:${gid}::/home/${user}:/bin/sh\n`,
  );
  // String.raw keeps the backslash that stops TypeScript from reading the shell's ${…} as its own
  writeFileSync(join(bin, 'fake'), FAKE.replace('@DIR@', dir).replaceAll('\\${', '${'));
  chmodSync(join(bin, 'fake'), 0o755);
  for (const name of FAKE_COMMANDS) symlinkSync('fake', join(bin, name));
  return {
    dir,
    bin,
    base,
    log: () => readFileSync(join(dir, 'log'), 'utf8').split('\n').filter(Boolean),
  };
}
