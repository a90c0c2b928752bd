#!/bin/sh
# deb-from-git, build step ({{PLATFORM}}): as the sandbox's unprivileged user, without network,
# after the prepare step (debian.prepare.sh) installed the build dependencies.
#
#   builder-client schedule hello-deb --platform debian-12 --template deb-from-git \
#     --source-git https://salsa.debian.org/debian/hello.git --source-ref debian/2.10-3
#
# Builds the job's source ($BUILDER_SOURCE, a tree with debian/) with dpkg-buildpackage
# (binary-only, unsigned) in a copy, and leaves the .deb files, the .changes, the .buildinfo and
# the build log (.build) in $BUILDER_OUTPUT. With --param LINTIAN=1 lintian checks the result
# (its report is an artifact too); LINTIAN=fail also fails the run on lintian errors.
set -eu
src=${BUILDER_SOURCE:?deb-from-git builds the job source: schedule it with --source-git URL [--source-ref REF]}
echo "==> source: ${BUILDER_REF:-?} at ${BUILDER_COMMIT:-?}"
# dpkg-buildpackage writes next to the tree it builds: a copy in the job's own directory
build=$HOME/deb-build
rm -rf "$build"
mkdir -p "$build/src"
cp -a "$src/." "$build/src/"
cd "$build/src"
name=$(dpkg-parsechangelog -S Source)
version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
log=$build/${name}_${version#*:}_$arch.build

echo "==> dpkg-buildpackage ($name $version)"
status=0
{ dpkg-buildpackage -b -us -uc 2>&1 || echo $? >"$build/status"; } | tee "$log"
[ -f "$build/status" ] && status=$(cat "$build/status")
cd "$build"

if [ "$status" -eq 0 ] && [ "${LINTIAN:-0}" != 0 ]; then
	echo "==> lintian"
	lintian --info ./*.changes >"${log%.build}.lintian" 2>&1 || :
	cat "${log%.build}.lintian"
	if [ "$LINTIAN" = fail ] && grep -q '^E: ' "${log%.build}.lintian"; then status=1; fi
fi

echo "==> artifacts"
for f in ./*.deb ./*.changes ./*.buildinfo ./*.build ./*.lintian; do
	[ -e "$f" ] || continue
	cp "$f" "$BUILDER_OUTPUT/"
	echo "${f#./}"
done
if [ "$status" -ne 0 ]; then
	echo "the build failed (exit $status): see ${log##*/}" >&2
	exit "$status"
fi
ls ./*.deb >/dev/null 2>&1 || { echo "dpkg-buildpackage made no .deb files" >&2; exit 1; }
