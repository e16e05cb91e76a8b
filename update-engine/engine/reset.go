package engine

import (
	"context"
	"fmt"

	"github.com/switchyard-os/switchyard/update-engine/state"
)

// ResetStatus is Flatcar's ResetStatus (update_engine_client -reset_status, updatectl
// reset-status): it brings the engine back to a clean IDLE.
//
//   - IDLE after a failed check or update, or REPORTING_ERROR_EVENT: the recorded error and
//     a postponed reboot's reason are cleared; the status is IDLE.
//   - UPDATED_NEED_REBOOT: the waiting reboot attempt is cancelled and its lock slot given
//     back, and the flipped update that has not been booted is abandoned: its partition is
//     made unbootable again (as updatectl rollback does before a reboot) and the state
//     forgets it. Flatcar deletes its marker and leaves the partition table flipped,
//     printing a hint to undo it by hand; here a flip without its state would boot a
//     partition nobody confirms, so the flip is undone. ErrRebooting when the reboot was
//     already requested.
//   - any other status (a check or an update in flight): ErrBusy, as Flatcar refuses it.
//
// The running partition is never written.
func (e *Engine) ResetStatus(ctx context.Context) error {
	switch e.status() {
	case StatusIdle, StatusReportingErrorEvent:
		e.update(func(s *Snapshot) {
			s.Status = StatusIdle
			s.LastError, s.LastErrorCode, s.RebootPostponed = "", 0, ""
		})
		e.log.Info("status reset")
		return nil
	case StatusUpdatedNeedReboot:
	default:
		return ErrBusy
	}
	if !e.work.TryLock() {
		return ErrBusy
	}
	defer e.work.Unlock()
	e.rmu.Lock()
	e.resetting = true
	e.rmu.Unlock()
	defer func() {
		e.rmu.Lock()
		e.resetting = false
		e.rmu.Unlock()
	}()
	if err := e.stopReboot(ctx); err != nil {
		return err
	}
	st, err := e.o.Store.Load()
	if err != nil {
		return err
	}
	active, _, err := e.o.Boot.Slots(ctx)
	if err != nil {
		return fmt.Errorf("engine: reading the partition table: %w", err)
	}
	if p := st.Pending; p != nil && p.Phase == state.PhaseFlipped && p.Target != active.Number {
		if err := e.o.Boot.Prepare(ctx, p.Target); err != nil {
			return fmt.Errorf("engine: abandoning the flipped update: %w", err)
		}
		st.AddHistory(e.clk.Now(), p.Version, "abandoned by a status reset")
		st.Pending = nil
		if err := e.o.Store.Save(st); err != nil {
			return err
		}
		e.log.Info("status reset: the flipped update is abandoned; the running partition boots next",
			"version", p.Version, "partition", active.Label)
	}
	// A slot taken for this reboot is not needed any more (idempotent).
	e.release(ctx)
	e.update(func(s *Snapshot) {
		s.Status = StatusIdle
		s.NewVersion, s.NewSize, s.Progress = "", 0, 0
		s.LastError, s.LastErrorCode, s.RebootPostponed = "", 0, ""
	})
	return nil
}
