package control

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/update-engine/engine"
)

// fakeDaemon records calls and serves snapshots from a list.
type fakeDaemon struct {
	mu       sync.Mutex
	snap     engine.Snapshot
	changed  chan struct{}
	checks   int
	markErr  error
	rollback int
	resets   int
}

func newFakeDaemon() *fakeDaemon {
	return &fakeDaemon{snap: engine.Snapshot{Status: engine.StatusIdle, CurrentVersion: "4000.0.0", Seq: 1}, changed: make(chan struct{})}
}

func (d *fakeDaemon) set(f func(*engine.Snapshot)) {
	d.mu.Lock()
	f(&d.snap)
	d.snap.Seq++
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

func (d *fakeDaemon) Snapshot() engine.Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.snap
}

func (d *fakeDaemon) Wait(ctx context.Context, after uint64) (engine.Snapshot, error) {
	for {
		d.mu.Lock()
		s, ch := d.snap, d.changed
		d.mu.Unlock()
		if s.Seq > after {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-ch:
		}
	}
}

func (d *fakeDaemon) CheckNow() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.snap.Status != engine.StatusIdle {
		return engine.ErrBusy
	}
	d.checks++
	return nil
}

func (d *fakeDaemon) MarkGood(context.Context) error { return d.markErr }
func (d *fakeDaemon) Rollback(context.Context) error {
	d.mu.Lock()
	d.rollback++
	d.mu.Unlock()
	return nil
}

func (d *fakeDaemon) ResetStatus(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.snap.Status.Settled() {
		return engine.ErrBusy
	}
	d.resets++
	d.snap.Status = engine.StatusIdle
	return nil
}

func serve(t *testing.T, d Daemon) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "run", "ue.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Serve(ctx, l, d, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	// A second daemon on the same socket is refused.
	if _, err := Listen(sock); err == nil {
		t.Error("a second Listen on a live socket succeeded")
	}
	return NewClient(sock)
}

func TestAPI(t *testing.T) {
	d := newFakeDaemon()
	c := serve(t, d)
	ctx := t.Context()

	s, err := c.Status(ctx)
	if err != nil || s.Status != engine.StatusIdle || s.CurrentVersion != "4000.0.0" {
		t.Fatalf("Status = %+v, %v", s, err)
	}
	if _, err := c.Check(ctx); err != nil || d.checks != 1 {
		t.Fatalf("Check = %v (checks %d)", err, d.checks)
	}
	d.set(func(s *engine.Snapshot) { s.Status = engine.StatusDownloading })
	if _, err := c.Check(ctx); !errors.Is(err, ErrBusy) {
		t.Errorf("Check while busy = %v, want ErrBusy", err)
	}
	d.markErr = errors.New("engine: marking partition 4 good: gpt: disk gone")
	var re *RemoteError
	if _, err := c.MarkGood(ctx); !errors.As(err, &re) || re.Status != 500 {
		t.Errorf("MarkGood = %v", err)
	}
	if _, err := c.Rollback(ctx); err != nil || d.rollback != 1 {
		t.Errorf("Rollback = %v", err)
	}
	if _, err := c.ResetStatus(ctx); !errors.Is(err, ErrBusy) || d.resets != 0 {
		t.Errorf("ResetStatus while downloading = %v (resets %d), want ErrBusy", err, d.resets)
	}
	d.set(func(s *engine.Snapshot) { s.Status = engine.StatusUpdatedNeedReboot })
	if s, err := c.ResetStatus(ctx); err != nil || d.resets != 1 || s.Status != engine.StatusIdle {
		t.Errorf("ResetStatus = %+v, %v (resets %d)", s, err, d.resets)
	}

	// Long poll: Wait returns once the sequence moves.
	cur, _ := c.Status(ctx)
	got := make(chan engine.Snapshot)
	go func() {
		s, err := c.Wait(ctx, cur.Seq)
		if err != nil {
			t.Error(err)
		}
		got <- s
	}()
	time.Sleep(50 * time.Millisecond)
	d.set(func(s *engine.Snapshot) { s.Progress = 0.5 })
	select {
	case s := <-got:
		if s.Progress != 0.5 || s.Seq <= cur.Seq {
			t.Errorf("Wait = %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after a change")
	}
}

func TestClientWithoutDaemon(t *testing.T) {
	c := NewClient(filepath.Join(t.TempDir(), "none.sock"))
	if _, err := c.Status(t.Context()); err == nil {
		t.Fatal("Status without a daemon succeeded")
	}
}
