package engine

import (
	"errors"
	"testing"
)

// TestResetStatus follows Flatcar's ResetStatus: a no-op in IDLE, UPDATED_NEED_REBOOT back
// to IDLE without touching the partition table, refused while a cycle holds the engine.
func TestResetStatus(t *testing.T) {
	r := newRig(t)
	e := r.engine(t)
	before := e.Snapshot()
	if err := e.ResetStatus(t.Context()); err != nil {
		t.Fatalf("ResetStatus in IDLE: %v", err)
	}
	if s := e.Snapshot(); s != before {
		t.Errorf("ResetStatus in IDLE changed the snapshot: %+v, was %+v", s, before)
	}
	if _, err := e.Once(t.Context()); err != nil {
		t.Fatal(err)
	}
	flipped := r.boot.slot(4)
	if err := e.ResetStatus(t.Context()); err != nil {
		t.Fatalf("ResetStatus in UPDATED_NEED_REBOOT: %v", err)
	}
	s := e.Snapshot()
	if s.Status != StatusIdle || s.NewVersion != "" || s.NewSize != 0 || s.Progress != 0 {
		t.Errorf("after reset: %+v", s)
	}
	if got := r.boot.slot(4); got != flipped {
		t.Errorf("reset changed the flipped partition: %+v, was %+v", got, flipped)
	}
	st, err := r.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending == nil {
		t.Error("reset forgot the pending update; the next boot could not confirm it")
	}

	// While a cycle holds the engine, reset is refused.
	e.work.Lock()
	err = e.ResetStatus(t.Context())
	e.work.Unlock()
	if !errors.Is(err, ErrBusy) {
		t.Errorf("ResetStatus during a cycle = %v, want ErrBusy", err)
	}
}
