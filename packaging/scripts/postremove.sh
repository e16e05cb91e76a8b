#!/bin/sh
# After removal (deb postrm, rpm %postun): make systemd forget the removed units. State
# (/var/lib/switchyard: the host identity key, the update state; /var/lib/omaha-server: the
# catalog and hosted payloads) is data, not package files, and stays unless removed by hand.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
