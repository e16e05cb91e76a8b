package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// orderedRebooter journals Release calls next to the post-reboot hook's runs, and can block
// in Reboot until its context ends (a reboot waiting for its window or lock).
type orderedRebooter struct {
	mu      sync.Mutex
	journal *[]string
	block   bool
	started chan struct{}
}

func (o *orderedRebooter) add(ev string) {
	o.mu.Lock()
	*o.journal = append(*o.journal, ev)
	o.mu.Unlock()
}

func (o *orderedRebooter) Reboot(ctx context.Context) error {
	if o.block {
		close(o.started)
		<-ctx.Done()
		o.add("reboot-cancelled")
		return ctx.Err()
	}
	o.add("reboot")
	return nil
}

func (o *orderedRebooter) Release(context.Context) error { o.add("release"); return nil }

type journalHook struct {
	o   *orderedRebooter
	err error
}

func (h journalHook) Run(context.Context) error { h.o.add("post-reboot-hook"); return h.err }

// TestPostRebootHook: after the reboot into the update, the post-reboot hook runs once the
// partition is marked good and before the lock is released; its failure is reported in the
// status and rolls nothing back.
func TestPostRebootHook(t *testing.T) {
	for _, hookErr := range []error{nil, errors.New("kubectl uncordon: connection refused")} {
		t.Run(map[bool]string{true: "fails", false: "succeeds"}[hookErr != nil], func(t *testing.T) {
			r := newRig(t)
			if _, err := r.engine(t).Once(t.Context()); err != nil {
				t.Fatal(err)
			}
			var journal []string
			rb := &orderedRebooter{journal: &journal}
			r.boot.boot()
			r.opts.BootID = "boot-2"
			r.opts.Rebooter = rb
			r.opts.PostReboot = journalHook{o: rb, err: hookErr}
			r.opts.Health = fakeHealth{}
			e := r.engine(t)
			if err := e.PostBoot(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(journal, " "); got != "post-reboot-hook release" {
				t.Errorf("journal %q, want the hook then the release", got)
			}
			if b := r.boot.slot(4); !b.Successful {
				t.Errorf("the confirmed partition is not marked good: %+v", b)
			}
			s := e.Snapshot()
			if s.Status != StatusIdle {
				t.Errorf("status %s", s.Status)
			}
			if hookErr != nil && !strings.Contains(s.LastError, "connection refused") {
				t.Errorf("the failed hook is not in the status: LastError %q", s.LastError)
			}
			if hookErr == nil && s.LastError != "" {
				t.Errorf("LastError %q after a good hook", s.LastError)
			}
			if got := r.srv.eventStrings(); got[len(got)-1] != "3/2 prev=4000.0.0" {
				t.Errorf("events %v", got)
			}
		})
	}
}

// TestPostRebootHookNotBeforeReboot: the hook does not run while the update waits for its
// reboot.
func TestPostRebootHookNotBeforeReboot(t *testing.T) {
	r := newRig(t)
	var journal []string
	rb := &orderedRebooter{journal: &journal}
	r.opts.PostReboot = journalHook{o: rb}
	e := r.engine(t)
	if _, err := e.Once(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := e.PostBoot(t.Context()); !errors.Is(err, ErrNotRebooted) {
		t.Fatalf("PostBoot = %v", err)
	}
	if len(journal) != 0 {
		t.Errorf("journal %q before the reboot", journal)
	}
}

func TestResetStatusAfterFailure(t *testing.T) {
	r := newRig(t)
	r.trust.err = errors.New("tuf: target not found")
	e := r.engine(t)
	if _, err := e.Once(t.Context()); err == nil {
		t.Fatal("Once succeeded without a TUF target")
	}
	if s := e.Snapshot(); s.Status != StatusIdle || s.LastError == "" {
		t.Fatalf("after the failure: %+v", s)
	}
	e.RebootPostponed(errors.New("pre-reboot hook failed"))
	if err := e.ResetStatus(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := e.Snapshot(); s.Status != StatusIdle || s.LastError != "" || s.LastErrorCode != 0 || s.RebootPostponed != "" {
		t.Errorf("after the reset: %+v", s)
	}
}

// TestResetStatusNeedReboot: a reset while the update waits for its reboot cancels the
// waiting reboot, gives the slot back, undoes the flip and forgets the update.
func TestResetStatusNeedReboot(t *testing.T) {
	r := newRig(t)
	var journal []string
	rb := &orderedRebooter{journal: &journal, block: true, started: make(chan struct{})}
	r.opts.Rebooter = rb
	r.opts.Policy.FirstDelay, r.opts.Policy.FirstFuzz = 0, 0
	e := r.engine(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wait, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer wcancel()
	if err := r.clk.waitArmed(wait); err != nil {
		t.Fatal(err)
	}
	r.clk.fireNext()
	select {
	case <-rb.started:
	case <-wait.Done():
		t.Fatal("no reboot attempt after the update")
	}
	if err := e.ResetStatus(wait); err != nil {
		t.Fatal(err)
	}
	rb.mu.Lock()
	got := strings.Join(journal, " ")
	rb.mu.Unlock()
	// The start-up release, the cancelled attempt, the reset's release.
	if got != "release reboot-cancelled release" {
		t.Errorf("journal %q", got)
	}
	if s := e.Snapshot(); s.Status != StatusIdle || s.NewVersion != "" {
		t.Errorf("after the reset: %+v", s)
	}
	if b := r.boot.slot(4); b.Priority != 0 || b.Tries != 0 {
		t.Errorf("the abandoned target is still bootable: %+v", b)
	}
	if st, _ := r.store.Load(); st.Pending != nil {
		t.Errorf("the state still holds the update: %+v", st.Pending)
	}
	r.boot.boot()
	if r.boot.active != 3 {
		t.Errorf("booted partition %d after the reset, want the running 3", r.boot.active)
	}
}

func TestResetStatusBusy(t *testing.T) {
	r := newRig(t)
	e := r.engine(t)
	e.setStatus(StatusCheckingForUpdate)
	if err := e.ResetStatus(t.Context()); !errors.Is(err, ErrBusy) {
		t.Errorf("ResetStatus while checking = %v, want ErrBusy", err)
	}
}
