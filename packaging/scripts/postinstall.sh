#!/bin/sh
# After install or upgrade (deb postinst, rpm %post): make systemd read the new units. The
# services are neither enabled nor started: each needs its configuration first (see the
# docs installed under /usr/share/doc). Without systemd running (a container, a chroot)
# there is nothing to tell.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
