#!/bin/sh
# deb-from-git, prepare step ({{PLATFORM}}): as root, with network, in the job's sandbox.
# Installs the build tools and the Build-Depends of the job's source (debian/control) from the
# base's apt sources; the worker's package cache keeps what apt downloads for the next jobs.
set -eu
export DEBIAN_FRONTEND=noninteractive
src=${BUILDER_SOURCE:?deb-from-git builds the job source: schedule it with --source-git URL [--source-ref REF]}
[ -f "$src/debian/control" ] || { echo "$src has no debian/control: not a Debian source package" >&2; exit 1; }
apt="apt-get -q -y --no-install-recommends -o APT::Keep-Downloaded-Packages=true"

# a fresh base (debian/mkroot --refresh) has its indexes; update only without them or when asked
if [ "${APT_UPDATE:-0}" = 1 ] || ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
	echo "==> apt-get update"
	apt-get -q update
fi

echo "==> tools"
tools="build-essential dpkg-dev fakeroot"
[ "${LINTIAN:-0}" != 0 ] && tools="$tools lintian"
# shellcheck disable=SC2086
$apt install $tools

echo "==> build dependencies"
# apt reads debian/control itself: no equivs package to build (mk-build-deps left its .deb in
# $TMPDIR and looked for it in the current directory)
$apt build-dep "$src/"
