#!/bin/sh
# Before removal (deb prerm, rpm %preun): stop and disable omaha-server.service. An upgrade (deb
# "upgrade", rpm "1": a package of this name stays installed) keeps it running.
set -e
case "$1" in
upgrade | 1) exit 0 ;;
esac
if [ -d /run/systemd/system ]; then
	systemctl disable --now omaha-server.service || true
fi
