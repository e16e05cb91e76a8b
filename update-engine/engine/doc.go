// Package engine is update-engine's state machine: when to check, what to do with an offer,
// and what to do after the reboot.
//
// # Parties
//
// The engine owns no I/O of its own. It drives small interfaces declared here, at the
// consumer: Server (the Omaha server: check, ping, report events), Trust (TUF: the pinned
// target of a version), Boot (the A/B partition table of the disk), Installer (download,
// verify and write a payload onto the target partition), Rebooter (the reboot strategy and
// its lock), Health (post-boot checks) and StateStore (the persisted state of package state).
// The clock and the random source are passed in too.
//
// # Statuses and transitions
//
// The statuses are Flatcar's, with the same strings. The table (enforced by CanMove):
//
//	from                   to                        when
//	IDLE                   CHECKING_FOR_UPDATE       the timer fires or a check is asked for
//	IDLE                   UPDATED_NEED_REBOOT       start: a flipped update waits for its reboot
//	CHECKING_FOR_UPDATE    IDLE                      noupdate, or the check failed (backoff)
//	CHECKING_FOR_UPDATE    UPDATE_AVAILABLE          the server offered a version
//	CHECKING_FOR_UPDATE    REPORTING_ERROR_EVENT     the answer is refused (codes 30, 31, 34)
//	UPDATE_AVAILABLE       DOWNLOADING               trusted (steps 1–5 below), target unbootable
//	UPDATE_AVAILABLE       REPORTING_ERROR_EVENT     refused: downgrade, clock, TUF, hash/size
//	DOWNLOADING            VERIFYING                 the last operation is written
//	DOWNLOADING            REPORTING_ERROR_EVENT     transfer, signature, hash or write error
//	VERIFYING              FINALIZING                the partition hash equals the manifest's
//	VERIFYING              REPORTING_ERROR_EVENT     it does not
//	FINALIZING             UPDATED_NEED_REBOOT       the GPT flip is written, 3/1 reported
//	FINALIZING             REPORTING_ERROR_EVENT     the flip failed
//	UPDATED_NEED_REBOOT    IDLE                      mark-good, rollback or reset
//	REPORTING_ERROR_EVENT  IDLE                      3/0 with the error code sent, or a reset
//
// In UPDATED_NEED_REBOOT a scheduled check is a ping only, as in Flatcar.
//
// # One update (DESIGN.md section 7's order)
//
//  1. Omaha check (events: none; 3/2 and 3/0 44 are sent as soon as they are known). An
//     answer the host refuses (empty, not Omaha XML, an error status or an invalid offer:
//     codes 30, 31, 34) is reported as 3/0 with its code; no answer or an HTTP error is not.
//  2. Downgrade: the offered version must be above the running one (code 35).
//  3. Clock sanity: now is not before the build time or the last successful TUF refresh
//     (code 20).
//  4. TUF refresh and target lookup for (version, board) (code 12); the target's length and
//     SHA-256 must equal Omaha's package size (code 11) and postinstall sha256 (code 10); its
//     release counter must be above the running one's, when known (code 35), and equal to
//     the one Omaha sent, if any (code 12).
//  5. The target partition is made unbootable (0/0/0, code 6 on failure), then 13/1.
//  6. The Installer verifies the manifest signature, streams, verifies and writes each
//     operation (resuming from the persisted checkpoint of the same payload), then checks the
//     final partition hash; its errors carry their own codes (see Failure). 14/1.
//  7. Flip (target tries 1, above the active one), state flipped, 3/1, UPDATED_NEED_REBOOT,
//     then the Rebooter (window, lock, reboot).
//
// Every failure is reported as 3/0 with its code and leaves the target unbootable. One
// reference time (from the Clock) is taken per cycle and used for every check in it.
//
// # Delta payloads
//
// An offer marked IsDeltaPayload is looked up in TUF as the delta target from the running
// version (its own target, custom source_version), and installed with the active partition
// as the source, which the Installer only reads and checks against the signed manifest
// before it writes anything. When the active partition is not the delta's source (code
// 1001, ErrorCodeDeltaSourceMismatch) the cycle reports that as 3/0 and, in the same
// cycle, checks in again with delta_okay="false" (Server.CheckFull) and installs the full
// payload; the statuses follow the table (REPORTING_ERROR_EVENT, IDLE,
// CHECKING_FOR_UPDATE, UPDATE_AVAILABLE, ...). Any other failure of a delta ends the cycle
// like a full payload's.
//
// # After the reboot
//
// On start, a pending update in phase "flipped" whose boot id differs from the current one
// means the host rebooted. If the active partition is the target, the health checks run and
// then the target is marked good, 3/2 is reported with the previous version and the reboot
// lock is released. If the host came back on the old partition and the target has tries 0
// and is not successful, the update did not stick: 3/0 errorcode 44 is reported and the lock
// released. Failing health checks leave the partition unmarked, so the next boot falls back.
//
// Between the confirmation (or the recorded rollback) and the release of the lock the
// post-reboot hook runs (Options.PostReboot, e.g. an uncordon); its failure is logged and
// shown as LastError, and rolls nothing back. The pre-reboot hook belongs to the reboot
// strategy (rebootlock/strategy); when it postpones the reboot the daemon calls
// RebootPostponed and the status shows the reason.
//
// # Reset
//
// ResetStatus (Flatcar's ResetStatus) clears a recorded failure, or abandons an applied
// update still waiting for its reboot: the reboot attempt is cancelled, the slot released,
// the flip undone. It is refused (ErrBusy) while a check or an update runs.
package engine
