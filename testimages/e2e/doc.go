// Package e2e holds the end-to-end update scenarios: real kernels booting real disk images in
// QEMU (package vmtest), the real update-engine inside the guest, a real omaha-server with
// TUF hosting on the host's loopback, and power cuts at the worst moments. It is tests only
// (go test ./testimages/e2e, or make e2e); nothing imports it.
//
// # Parties
//
// The host side of each scenario is a world: an omaha-server (SQLite store, tufhost under
// /tuf/) over TLS on 127.0.0.1, with a certificate for 10.0.2.100 signed by a CA made for the
// test, the TUF keys (offline root and targets, online snapshot and timestamp) and the payload
// key. A release is a test OS image (image.Builder.USR) turned into a zstd payload, signed,
// pinned in TUF targets with its length, SHA-256 and release counter, uploaded and pointed to
// by the channel. The guest reaches the server only as https://10.0.2.100/ through QEMU's
// guestfwd (restrict=on): TLS runs end to end, so the daemon's transport needs no plain-HTTP
// exception.
//
// The guest side is the test OS (package testos) with update-engine as its only service. What
// every release of the image carries (the trust anchors and the settings of the image) lives
// on USR: /usr/share/flatcar/release (version, board), /usr/share/switchyard/e2e.conf
// (SERVER_CA, TUF_ROOT, PAYLOAD_KEYS, DISK=/dev/vda, REBOOT_COMMAND, health checks and short
// check intervals), the CA, the TUF root and the payload key. What differs per machine comes
// from the kernel command line into /etc/switchyard/update.conf on ROOT: SERVER, GROUP,
// MACHINE_ID, the reboot strategy and its lock. The daemon reads the three files in that order.
// The health check is /usr/bin/sy-health (the test OS checks) and /usr/bin/app-check, a
// busybox script that a broken release makes fail.
//
// # Scenarios
//
//	TestUpdate    v1 on USR-A installs v2, reboots itself, confirms v2 on USR-B; the server
//	              records 3/2 and the instance complete.
//	TestRollback  a broken v3 fails its health check; its one try is spent, the power-cycled
//	              guest falls back to v2 and reports errorcode 44; the group's failure
//	              threshold halts the rollout and v3 is not offered again.
//	TestPowerCut  QEMU killed at a random point of the payload write, then between the first
//	              and last GPT write of the flip; the guest boots the old version each time
//	              and the next attempt resumes (HTTP Range, < 1.2x the payload served).
//	TestDeltaPowerCut  v1 → v2 by a delta payload, QEMU killed during the delta write; v1
//	              boots again and the next attempt resumes the delta (HTTP Range, never the
//	              full payload) and completes on v2.
//	TestFleet     three guests of one group on etcd-lock with max 1 against an embedded etcd:
//	              never two holders, each guest reboots while it holds the slot.
//
// Each console is kept in build/testimages/console/TESTNAME.log.
//
// Invariants the scenarios check after every boot and cut: the guest runs a version whose
// partition the GPT allowed (read on the host with partitions/gpt and Debian's cgpt), a
// partition is bootable only once its payload is whole and verified, and the server's record
// (events, instance status, rollout) matches what the console shows.
package e2e
