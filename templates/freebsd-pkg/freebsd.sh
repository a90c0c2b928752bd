#!/bin/sh
# Build a FreeBSD package from the ports tree.
#
#   builder-client schedule tmux-pkg --platform freebsd-14 --template freebsd-pkg \
#     --var ORIGIN=sysutils/tmux --var PORTS_REF=2025Q2
#
# Clones the ports tree at PORTS_REF (main, or a quarterly branch such as
# 2025Q2), builds the port ORIGIN (category/name) with its dependencies taken
# from binary packages, and copies the package to $BUILDER_OUTPUT. Everything
# the build writes stays in the job's directory. Runs as root (in a jail).
set -eu

ORIGIN='{{ORIGIN}}'
PORTS_REF='{{PORTS_REF}}'

top=$PWD
PORTSDIR="$top/ports"
mkdir -p "$top/packages" # when it exists the package lands in it, and PKGFILE says so

if [ "$(id -u)" -ne 0 ]; then
	echo "freebsd-pkg installs build dependencies: run it as root (in a jail)" >&2
	exit 1
fi
export ASSUME_ALWAYS_YES=yes # pkg(8) never stops to ask

port_make() {
	make -C "$PORTSDIR/$ORIGIN" BATCH=yes PORTSDIR="$PORTSDIR" WRKDIRPREFIX="$top/work" \
		DISTDIR="$top/distfiles" PACKAGES="$top/packages" "$@"
}

echo "==> tools ({{PLATFORM}})"
command -v git >/dev/null 2>&1 || pkg install -y git-lite

echo "==> ports tree at $PORTS_REF"
git clone --quiet --depth 1 --branch "$PORTS_REF" https://git.FreeBSD.org/ports.git "$PORTSDIR"
echo "commit $(git -C "$PORTSDIR" rev-parse HEAD)"

if [ ! -f "$PORTSDIR/$ORIGIN/Makefile" ]; then
	echo "no port $ORIGIN in the ports tree at $PORTS_REF" >&2
	exit 1
fi

echo "==> make package: $ORIGIN"
# dependencies from binary packages: faster, and what the package's users have installed
port_make USE_PACKAGE_DEPENDS=yes package

echo "==> artifacts"
pkgfile=$(port_make -V PKGFILE)
cp "$pkgfile" "$BUILDER_OUTPUT/"
echo "${pkgfile##*/}"
