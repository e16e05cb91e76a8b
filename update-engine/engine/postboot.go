package engine

import (
	"context"
	"fmt"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/partitions/slots"
	"github.com/switchyard-os/switchyard/update-engine/state"
)

// PostBoot does the work after a reboot into (or back from) a flipped update: health checks,
// mark good and 3/2, or the rollback report 3/0 errorcode 44. It returns ErrNoPending when no
// flipped update waits for confirmation and ErrNotRebooted when the host has not rebooted
// since the flip. Failing health checks return their error and leave the partition unmarked.
func (e *Engine) PostBoot(ctx context.Context) error {
	e.work.Lock()
	defer e.work.Unlock()
	st, err := e.o.Store.Load()
	if err != nil {
		return err
	}
	p := st.Pending
	if p != nil && p.Phase == state.PhaseDownloading {
		// A crash between the GPT flip and saving the state leaves the phase behind; the
		// host running the target proves the flip happened.
		if active, _, err := e.o.Boot.Slots(ctx); err == nil && active.Number == p.Target {
			e.log.Warn("running the target of an update whose flip was not recorded: confirming it", "version", p.Version)
			p.Phase = state.PhaseFlipped
		}
	}
	if p == nil || p.Phase != state.PhaseFlipped {
		return ErrNoPending
	}
	if p.FlipBootID != "" && p.FlipBootID == e.o.BootID {
		e.update(func(s *Snapshot) {
			s.Status = StatusUpdatedNeedReboot
			s.NewVersion, s.NewSize, s.Progress = p.Version, p.Size, 1
		})
		return ErrNotRebooted
	}
	active, target, err := e.o.Boot.Slots(ctx)
	if err != nil {
		return fmt.Errorf("engine: reading the partition table: %w", err)
	}
	switch {
	case active.Number == p.Target:
		return e.confirm(ctx, &st, active)
	case target.Number == p.Target && target.Tries == 0 && !target.Successful:
		return e.recordRollback(ctx, &st)
	default:
		// Rebooted, yet the boot loader chose the old partition while the new one still has
		// a try (or was marked good by hand): it may still boot, so keep waiting.
		e.log.Warn("rebooted on the old partition but the new one is still bootable",
			"active", active.Label, "target", target.Label, "tries", target.Tries, "successful", target.Successful)
		e.update(func(s *Snapshot) {
			s.Status = StatusUpdatedNeedReboot
			s.NewVersion, s.NewSize, s.Progress = p.Version, p.Size, 1
		})
		return ErrNotRebooted
	}
}

// confirm runs the health checks on the new partition, marks it good and reports 3/2.
func (e *Engine) confirm(ctx context.Context, st *state.State, active slots.Slot) error {
	p := st.Pending
	e.log.Info("booted the new partition: running health checks", "version", p.Version, "partition", active.Label)
	if e.o.Health != nil {
		if err := e.o.Health.Run(ctx); err != nil {
			e.update(func(s *Snapshot) { s.LastError = err.Error() })
			e.log.Error("health checks failed: the partition stays unmarked and the next boot falls back", "err", err)
			return fmt.Errorf("engine: %w", err)
		}
	}
	if err := e.o.Boot.MarkGood(ctx, active.Number); err != nil {
		return fmt.Errorf("engine: marking partition %d good: %w", active.Number, err)
	}
	st.AddHistory(e.clk.Now(), p.Version, "marked good")
	if p.Release > 0 {
		st.Release = p.Release
	}
	from := p.FromVersion
	st.Pending = nil
	if err := e.o.Store.Save(*st); err != nil {
		return err
	}
	e.report(ctx, omaha.EventRebooted(from))
	e.log.Info("update confirmed", "version", p.Version, "previous", from)
	hookErr := e.afterReboot(ctx)
	e.update(func(s *Snapshot) {
		s.Status = StatusIdle
		s.NewVersion, s.NewSize, s.Progress = "", 0, 0
		s.ActivePartition = active.Label
		s.RebootPostponed = ""
		if hookErr != nil {
			s.LastError = hookErr.Error()
		}
	})
	return nil
}

// recordRollback reports that the host came back on the old partition.
func (e *Engine) recordRollback(ctx context.Context, st *state.State) error {
	p := st.Pending
	e.log.Error("the update did not stick: back on the old partition", "version", p.Version, "running", e.o.Version)
	st.AddHistory(e.clk.Now(), p.Version, "rolled back")
	st.Pending = nil
	if err := e.o.Store.Save(*st); err != nil {
		return err
	}
	e.report(ctx, omaha.EventRollback(0))
	e.o.Metrics.Update(uint32(omaha.ErrorCodeRollback))
	hookErr := e.afterReboot(ctx)
	e.update(func(s *Snapshot) {
		s.Status = StatusIdle
		s.RebootPostponed = ""
		s.LastError = fmt.Sprintf("update to %s rolled back", p.Version)
		if hookErr != nil {
			s.LastError += "; " + hookErr.Error()
		}
		s.LastErrorCode = uint32(omaha.ErrorCodeRollback)
		s.NewVersion, s.NewSize, s.Progress = "", 0, 0
	})
	return nil
}

// afterReboot runs the post-reboot hook, then gives back the reboot lock. A failing hook is
// logged and returned for the status; it rolls nothing back and keeps nothing held (the
// partition is already confirmed or the rollback recorded).
func (e *Engine) afterReboot(ctx context.Context) error {
	var err error
	if e.o.PostReboot != nil {
		if err = e.o.PostReboot.Run(ctx); err != nil {
			err = fmt.Errorf("engine: post-reboot hook: %w", err)
			e.log.Error("post-reboot hook failed; the update stays confirmed", "err", err)
		}
	}
	e.release(ctx)
	return err
}

func (e *Engine) release(ctx context.Context) {
	if e.o.Rebooter == nil {
		return
	}
	if err := e.o.Rebooter.Release(ctx); err != nil {
		e.log.Warn("releasing the reboot lock", "err", err)
	}
}

// MarkGood marks the running partition good by hand (updatectl mark-good). A flipped update
// that booted is confirmed as PostBoot would, without the health checks.
func (e *Engine) MarkGood(ctx context.Context) error {
	if !e.work.TryLock() {
		return ErrBusy
	}
	defer e.work.Unlock()
	active, _, err := e.o.Boot.Slots(ctx)
	if err != nil {
		return fmt.Errorf("engine: reading the partition table: %w", err)
	}
	if err := e.o.Boot.MarkGood(ctx, active.Number); err != nil {
		return fmt.Errorf("engine: marking partition %d good: %w", active.Number, err)
	}
	st, err := e.o.Store.Load()
	if err != nil {
		return err
	}
	if p := st.Pending; p != nil && p.Phase == state.PhaseFlipped && p.Target == active.Number && p.FlipBootID != e.o.BootID {
		from := p.FromVersion
		st.AddHistory(e.clk.Now(), p.Version, "marked good by hand")
		st.Pending = nil
		if err := e.o.Store.Save(st); err != nil {
			return err
		}
		e.report(ctx, omaha.EventRebooted(from))
		if err := e.afterReboot(ctx); err != nil {
			e.update(func(s *Snapshot) { s.LastError = err.Error() })
		}
	}
	e.log.Info("running partition marked good", "partition", active.Label)
	e.update(func(s *Snapshot) {
		if s.Status == StatusUpdatedNeedReboot {
			return
		}
		s.ActivePartition = active.Label
	})
	return nil
}

// Rollback makes the other, known-good partition boot next (updatectl rollback). A flipped
// update that has not been booted yet is abandoned: its partition keeps tries 0 after the
// rollback's prioritization, and the state forgets it.
func (e *Engine) Rollback(ctx context.Context) error {
	if !e.work.TryLock() {
		return ErrBusy
	}
	defer e.work.Unlock()
	active, _, err := e.o.Boot.Slots(ctx)
	if err != nil {
		return fmt.Errorf("engine: reading the partition table: %w", err)
	}
	st, err := e.o.Store.Load()
	if err != nil {
		return err
	}
	from := active.Number
	if p := st.Pending; p != nil && p.Phase == state.PhaseFlipped && p.Target != active.Number {
		// Not booted yet: make the pending target unbootable again, the running one stays.
		if err := e.o.Boot.Prepare(ctx, p.Target); err != nil {
			return fmt.Errorf("engine: abandoning the flipped update: %w", err)
		}
		st.AddHistory(e.clk.Now(), p.Version, "abandoned before reboot")
		st.Pending = nil
		if err := e.o.Store.Save(st); err != nil {
			return err
		}
		e.log.Info("flipped update abandoned; the running partition boots next", "partition", active.Label)
		e.update(func(s *Snapshot) { s.Status = StatusIdle; s.NewVersion = ""; s.NewSize = 0; s.Progress = 0 })
		return nil
	}
	to, err := e.o.Boot.Rollback(ctx, from)
	if err != nil {
		return fmt.Errorf("engine: rollback: %w", err)
	}
	st.AddHistory(e.clk.Now(), e.o.Version, fmt.Sprintf("rollback to partition %d requested", to))
	if err := e.o.Store.Save(st); err != nil {
		return err
	}
	e.log.Info("rollback requested: the other partition boots next", "from", from, "to", to)
	e.update(func(s *Snapshot) {})
	return nil
}
