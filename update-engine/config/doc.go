// Package config reads the host configuration of update-engine.
//
// # Files
//
// Configuration comes from KEY=VALUE files, read in this order, later files overriding earlier
// ones, and command-line flags overriding all files:
//
//	/usr/share/flatcar/release      FLATCAR_RELEASE_VERSION, FLATCAR_RELEASE_BOARD, FLATCAR_RELEASE_APPID
//	/etc/flatcar/update.conf        Flatcar's user keys (SERVER, GROUP, REBOOT_STRATEGY, LOCKSMITHD_*)
//	/etc/switchyard/update.conf     the same keys plus ours (below)
//
// # Format
//
// One assignment per line: KEY=VALUE. Blank lines and lines whose first non-blank character is
// '#' are ignored. An optional leading "export " is accepted (the files double as shell
// fragments and systemd EnvironmentFiles). A value may be wrapped in single or double quotes;
// inside double quotes \" and \\ are escapes. Keys are [A-Za-z_][A-Za-z0-9_]*. A file larger
// than MaxFileSize or a line longer than MaxLineSize is refused; any malformed line is an
// error naming the file and line, never skipped silently.
//
// # Keys
//
// Flatcar's keys keep their meaning: SERVER (the Omaha endpoint), GROUP (sent as track),
// FLATCAR_RELEASE_VERSION / FLATCAR_RELEASE_BOARD / FLATCAR_RELEASE_APPID, MACHINE_ALIAS,
// REBOOT_STRATEGY (etcd-lock, fleetlock, reboot, off, best-effort), LOCKSMITHD_REBOOT_WINDOW_START ("Thu
// 23:00"), LOCKSMITHD_REBOOT_WINDOW_LENGTH ("1h30m"), LOCKSMITHD_GROUP, LOCKSMITHD_ENDPOINT,
// LOCKSMITHD_ETCD_CAFILE, LOCKSMITHD_ETCD_CERTFILE, LOCKSMITHD_ETCD_KEYFILE. best-effort is
// locksmithd's old strategy: etcd-lock when an etcd endpoint is configured, otherwise reboot
// (ResolvedRebootStrategy). The Switchyard keys, among them PRE_REBOOT_HOOK, POST_REBOOT_HOOK
// and REBOOT_HOOK_TIMEOUT, are listed in the Keys table in config.go; `update-engine -keys`
// prints them too.
//
// Files are parsed by Parse (pure, fuzzed); Load merges files and returns a Config with the
// defaults of Default filled in. Only cmd/update-engine reads the real paths; this package
// never reads environment variables.
package config
