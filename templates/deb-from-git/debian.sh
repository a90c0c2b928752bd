#!/bin/sh
# Build Debian packages from a git repository that carries a debian/ directory.
#
#   builder-client schedule hello-deb --platform debian-12 --template deb-from-git \
#     --var REPO=https://salsa.debian.org/debian/hello.git --var REF=debian/2.10-3
#
# Clones REPO, checks out REF (a branch, tag or commit), installs the build
# dependencies named in debian/control, runs dpkg-buildpackage (binary-only,
# unsigned) and copies the .deb files with their .buildinfo and .changes to
# $BUILDER_OUTPUT. Needs root or password-less sudo for apt-get.
set -eu

REPO='{{REPO}}'
REF='{{REF}}'

export DEBIAN_FRONTEND=noninteractive
as_root() {
	# sudo resets the environment: pass what apt needs explicitly
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n env DEBIAN_FRONTEND=noninteractive "$@"; fi
}

echo "==> tools ({{PLATFORM}})"
as_root apt-get update -q
as_root apt-get install -y -q --no-install-recommends ca-certificates git build-essential dpkg-dev devscripts equivs

echo "==> source: $REPO at $REF"
git clone --quiet "$REPO" src
cd src
git checkout --quiet "$REF"
git submodule update --quiet --init --recursive
echo "commit $(git rev-parse HEAD)"

echo "==> build dependencies"
# mk-build-deps turns debian/control's Build-Depends into a package apt can resolve
as_root mk-build-deps --install --remove \
	--tool 'apt-get -y -q --no-install-recommends' debian/control
rm -f ./*-build-deps_*.buildinfo ./*-build-deps_*.changes

echo "==> dpkg-buildpackage"
dpkg-buildpackage -b -us -uc
cd ..

echo "==> artifacts"
found=0
for f in ./*.deb ./*.buildinfo ./*.changes; do
	[ -e "$f" ] || continue
	cp "$f" "$BUILDER_OUTPUT/"
	echo "${f#./}"
	case $f in *.deb) found=$((found + 1)) ;; esac
done
if [ "$found" -eq 0 ]; then
	echo "dpkg-buildpackage made no .deb files" >&2
	exit 1
fi
