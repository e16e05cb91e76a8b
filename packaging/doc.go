// Package packaging holds how Switchyard lands on a machine, and Go only in its tests:
//
//	nfpm/host.yaml     switchyard-host: update-engine, updatectl, update-engine.service, the
//	                   D-Bus policy (packaging/dbus, once present), /etc/switchyard/update.conf
//	nfpm/server.yaml   switchyard-server: omaha-server, syctl, omaha-server.service,
//	                   /etc/default/omaha-server
//	systemd/           the units (Type=notify with a watchdog; see package sdnotify)
//	etc/               the default configuration files, installed as conffiles
//	scripts/           maintainer scripts shared by .deb and .rpm: daemon-reload after install
//	                   and removal, stop and disable before removal; no service is enabled
//	version.sh         the package version from git describe
//	prometheus/        alerts.yml (Prometheus alert rules over the metrics the code exports)
//	                   and alerts_test.yml (their `promtool test rules` unit tests)
//	grafana/           switchyard-fleet.json, the fleet dashboard
//
// `make packages` builds both sides as .deb and .rpm into build/packages/ with nfpm. Binaries
// go to /usr/bin, units to /usr/lib/systemd/system, documentation to
// /usr/share/doc/<package>/. The invariants the tests hold: every unit's ExecStart names a
// binary its package installs, at the path the README names; configuration files are
// conffiles (an upgrade keeps an edited one); the units pass `systemd-analyze verify` once
// installed; `dpkg --purge` leaves nothing behind; the .rpm carries the same files and
// configuration files as the .deb. State the daemons create at run time (/var/lib/switchyard,
// /var/lib/omaha-server) is data and survives removal.
//
// The tests install the real .deb on the machine they run on, so they need root and dpkg and
// skip, saying why, without them. The monitoring tests run promtool (Debian's prometheus
// package; skipped, saying so, without it) and check that the rules and the dashboard name
// only metrics the Go code registers. Nothing imports this package.
package packaging
