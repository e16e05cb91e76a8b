package engine

import (
	"context"
	"fmt"
)

// ResetStatus is Flatcar's ResetStatus (D-Bus com.coreos.update1, update_engine_client
// -reset_status): in IDLE it does nothing; in UPDATED_NEED_REBOOT it returns to IDLE and
// forgets the new version and size; in any other status it fails with ErrBusy.
//
// Like Flatcar's, it does not undo the partition table change: the flipped partition still
// boots next and is confirmed after that boot (Rollback abandons it instead). The pending
// update stays recorded, so a restart of the daemon in the same boot shows
// UPDATED_NEED_REBOOT again (Flatcar deletes its marker file instead); the next check is a
// full check, not a ping.
func (e *Engine) ResetStatus(ctx context.Context) error {
	if !e.work.TryLock() {
		return ErrBusy
	}
	defer e.work.Unlock()
	// With the work lock held no cycle runs, so the status is a settled one.
	switch from := e.status(); from {
	case StatusIdle:
		return nil
	case StatusUpdatedNeedReboot:
		e.update(func(s *Snapshot) {
			s.Status = StatusIdle
			s.NewVersion, s.NewSize, s.Progress = "", 0, 0
		})
		e.log.Info("status reset to idle; the flipped partition still boots next")
	default:
		return fmt.Errorf("%w: reset is allowed in %s and %s only, not %s", ErrBusy, StatusIdle, StatusUpdatedNeedReboot, from)
	}
	return nil
}
