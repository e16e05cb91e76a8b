#!/bin/sh
# Prints the package version from `git describe`, in a form both dpkg and rpm order
# correctly: tag v1.2.3 -> 1.2.3; 4 commits after it -> 1.2.3+4.gabc1234; without a tag
# 0.0.0+<commits>.g<hash>; uncommitted changes add .dirty. Outside a git checkout (a
# source tarball) give the version instead: make packages VERSION=1.2.3.
set -e
if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	echo "packaging/version.sh: not a git checkout: run make packages VERSION=<version>" >&2
	exit 1
fi
dirty=$(git diff --quiet HEAD -- 2>/dev/null || echo .dirty)
if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	echo "${d#v}$dirty" | sed -E 's/-([0-9]+)-g([0-9a-f]+)/+\1.g\2/'
else
	echo "0.0.0+$(git rev-list --count HEAD).g$(git rev-parse --short HEAD)$dirty"
fi
