// Package rebootlock coordinates reboots across a fleet: a counting semaphore per group kept
// in etcd v3, so that at most max hosts of a group are rebooting (or not yet healthy again)
// at once.
//
// # Parties
//
// The host daemon (update-engine) takes a slot with Lock once an update is staged, reboots,
// and calls Unlock only after the new partition booted, passed its health checks and was
// marked good (or after it recorded a rollback). The slot is therefore held across the
// reboot. An operator inspects and repairs the lock with `updatectl lock` (Status, SetMax,
// Reclaim, Unlock). omaha-server serves the FleetLock protocol from the same keys through
// the fleetlock sub-package, for hosts that hold no etcd credentials. This is the only
// package of the module that imports the etcd client.
//
// # Keys
//
// Under a prefix (DefaultPrefix unless configured), for each group g:
//
//	<prefix>/groups/<g>/config          {"max": N}; absent means max 1
//	<prefix>/groups/<g>/holders/<id>    Holder as JSON; no lease: it survives the reboot
//	                                    (with Options.UnconfiguredHolderTTL, a holder
//	                                    entering a group without config is on a lease)
//	<prefix>/groups/<g>/alive/<id>      empty; bound to the holder process's session lease
//	<prefix>/groups/<g>/deadline/<id>   empty; bound to a lease granted at Lock time for
//	                                    RebootDeadline and never renewed
//
// Group names match ^[a-zA-Z0-9.-]+$ (the FleetLock pattern); holder ids are non-empty
// text of at most 256 bytes (spaces and any script allowed), without '/' or control and
// format characters.
//
// # Invariants
//
//   - Acquire is one transaction: it reads the group at revision R, and writes the holder
//     key only if no key under holders/ was created or modified after R and the config key
//     is unchanged. A concurrent acquire therefore makes all but one of the racing
//     transactions fail, and they re-read. Deletions cannot break the guard: they only free
//     slots. Hence the number of holders never exceeds max as it was when each holder
//     entered.
//   - Lowering max keeps existing holders; no new holder enters until the count is below
//     the new max. Raising max lets waiters in at once (they watch the config key).
//   - Lock and Unlock are idempotent: locking as an existing holder succeeds without a
//     write, unlocking a non-holder succeeds.
//   - A holder value that is not valid JSON is reported in Status and still counts as a
//     holder: when in doubt, a slot is taken, never given.
//   - A config value that cannot be read makes Lock fail (ErrBadConfig) rather than guess
//     max; SetMax overwrites it.
//
// # Liveness and stale holders
//
// While the holder's process runs (before the reboot, and again after it through
// KeepAlive), alive/<id> exists. During a reboot it is gone; the deadline key, whose lease
// etcd expires RebootDeadline after the Lock, still covers the host. A holder with neither
// key is stale: a host that never came back. Stale holders are shown in Status and counted
// in the switchyard_rebootlock_stale_holders gauge; Reclaim frees such a slot explicitly.
// Automatic reclaim happens only when Options.AutoReclaimAfter is set, after a waiter has
// seen the holder stale for that long. etcd may extend a lease across a leader change, so
// a holder can be reported stale later than RebootDeadline, never earlier. Holders taken
// through FleetLock or by hand (`updatectl lock lock`) have no liveness key; they become
// stale when their deadline passes. The FleetLock server also sets
// Options.UnconfiguredHolderTTL, so its holders in groups without a config key are deleted
// by etcd after that time (see the fleetlock package). Monitor refreshes the metrics periodically.
//
// # Waiting
//
// Lock waits with a watch on the group's keys from R+1 (any release, config change or
// liveness change wakes it), then re-reads after a random jitter so that waiters do not
// stampede. There is no ordering among waiters: whoever's transaction lands first after a
// release gets the slot. TryLock does not wait and returns ErrFull. etcd errors end Lock
// with an error; callers retry (the strategy package does, with backoff), which is safe
// because an acquire that did commit is found on the next read.
package rebootlock
