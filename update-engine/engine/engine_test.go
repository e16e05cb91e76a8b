package engine

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchyard-os/switchyard/partitions/slots"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/update-engine/schedule"
	"github.com/switchyard-os/switchyard/update-engine/state"
)

const payloadSize = 10 << 20

var payloadSum = sha256.Sum256([]byte("payload"))

func testOffer() *omaha.Offer {
	return &omaha.Offer{
		Version: "4001.0.0",
		URLs:    []string{"https://updates.example/4001.0.0/"},
		Package: omaha.Package{Name: "update.sy", Size: payloadSize},
		SHA256:  payloadSum[:],
	}
}

func testTarget() Target {
	return Target{Name: "amd64-usr/4001.0.0/update.sy", Length: payloadSize, SHA256: payloadSum[:], Version: "4001.0.0", Board: "amd64-usr"}
}

type rig struct {
	srv   *fakeServer
	trust *fakeTrust
	boot  *fakeBoot
	inst  *fakeInstaller
	store state.Store
	clk   *fakeClock
	opts  Options
}

func newRig(t *testing.T) *rig {
	r := &rig{
		srv:   &fakeServer{offer: testOffer()},
		trust: &fakeTrust{target: testTarget()},
		boot:  newFakeBoot(),
		inst:  &fakeInstaller{opSize: 1 << 20},
		store: state.Store{Dir: t.TempDir()},
		clk:   newFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)),
	}
	r.opts = Options{
		Server: r.srv, Trust: r.trust, Boot: r.boot, Installer: r.inst, Store: r.store,
		Clock: r.clk, Rand: rand.New(rand.NewPCG(1, 1)),
		Policy: schedule.Policy{FirstDelay: 7 * time.Minute, FirstFuzz: 10 * time.Minute, Interval: 45 * time.Minute,
			Fuzz: 10 * time.Minute, MaxBackoff: 4 * time.Hour, MinPoll: 5 * time.Minute, MaxPoll: 24 * time.Hour},
		Version: "4000.0.0", Board: "amd64-usr", BootID: "boot-1",
		Log: slog.New(tableGuard{t}),
	}
	return r
}

// tableGuard is a log handler that fails the test when the engine logs a status transition
// outside its table: at runtime such a move is only logged, in tests it is a bug.
type tableGuard struct{ t *testing.T }

func (g tableGuard) Enabled(context.Context, slog.Level) bool { return true }
func (g tableGuard) WithAttrs([]slog.Attr) slog.Handler       { return g }
func (g tableGuard) WithGroup(string) slog.Handler            { return g }
func (g tableGuard) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "status transition outside the table" {
		var attrs []string
		r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a.String()); return true })
		g.t.Errorf("engine: %s %v", r.Message, attrs)
	}
	return nil
}

func (r *rig) engine(t *testing.T) *Engine {
	t.Helper()
	e, err := New(r.opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestOnceHappyPath(t *testing.T) {
	r := newRig(t)
	e := r.engine(t)
	var seen []Status
	go func() {
		var seq uint64
		for {
			s, err := e.Wait(t.Context(), seq)
			if err != nil {
				return
			}
			if len(seen) == 0 || seen[len(seen)-1] != s.Status {
				seen = append(seen, s.Status)
			}
			seq = s.Seq
		}
	}()
	snap, err := e.Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Status != StatusUpdatedNeedReboot || snap.NewVersion != "4001.0.0" || snap.Progress != 1 {
		t.Errorf("snapshot %+v", snap)
	}
	if got, want := r.srv.eventStrings(), []string{"13/1", "14/1", "3/1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if b := r.boot.slot(4); b.Priority != 2 || b.Tries != 1 || b.Successful {
		t.Errorf("target after flip: %+v", b)
	}
	st, _ := r.store.Load()
	if st.Pending == nil || st.Pending.Phase != state.PhaseFlipped || st.Pending.FlipBootID != "boot-1" || st.Resume != nil {
		t.Errorf("state after flip: pending %+v resume %+v", st.Pending, st.Resume)
	}
	if st.AlephVersion != "4000.0.0" {
		t.Errorf("aleph version %q", st.AlephVersion)
	}
	if !r.srv.onDemand[0] {
		t.Error("--once did not send an on-demand check")
	}
	// A second --once before the reboot does nothing.
	if _, err := r.engine(t).Once(t.Context()); !errors.Is(err, ErrNeedReboot) {
		t.Errorf("second Once = %v, want ErrNeedReboot", err)
	}
}

func TestRefusals(t *testing.T) {
	other := sha256.Sum256([]byte("other"))
	tests := []struct {
		name  string
		edit  func(*rig)
		code  omaha.ErrorCode
		is    error
		wrote bool // whether the target was touched (made unbootable)
	}{
		{name: "downgrade", edit: func(r *rig) { r.srv.offer.Version = "3999.0.0" }, code: omaha.ErrorCodeOmahaUpdateIgnoredPerPolicy, is: ErrDowngrade},
		{name: "same version", edit: func(r *rig) { r.srv.offer.Version = "4000.0.0" }, code: omaha.ErrorCodeOmahaUpdateIgnoredPerPolicy, is: ErrDowngrade},
		{name: "clock before build", edit: func(r *rig) { r.opts.BuildTime = r.clk.Now().Add(time.Hour) }, code: omaha.ErrorCodeDownloadStateInitializationError, is: ErrClock},
		{name: "tuf refuses", edit: func(r *rig) { r.trust.err = errors.New("tuf: timestamp expired") }, code: omaha.ErrorCodeDownloadPayloadVerificationError, is: ErrTrust},
		{name: "hash not pinned", edit: func(r *rig) { r.trust.target.SHA256 = other[:] }, code: omaha.ErrorCodePayloadHashMismatchError, is: ErrMismatch},
		{name: "size not pinned", edit: func(r *rig) { r.trust.target.Length++ }, code: omaha.ErrorCodePayloadSizeMismatchError, is: ErrMismatch},
		{name: "wrong board", edit: func(r *rig) { r.trust.target.Board = "arm64-usr" }, code: omaha.ErrorCodeDownloadPayloadVerificationError, is: ErrTrust},
		{name: "hex hash disagrees", edit: func(r *rig) { r.srv.offer.Package.HashSHA256 = "00" }, code: omaha.ErrorCodePayloadHashMismatchError, is: ErrMismatch},
		{name: "release counter not above the running one", edit: func(r *rig) {
			r.trust.target.Release = 7
			r.store.Save(state.State{Release: 7})
		}, code: omaha.ErrorCodeOmahaUpdateIgnoredPerPolicy, is: ErrDowngrade},
		{name: "Omaha and TUF release counters differ", edit: func(r *rig) {
			r.trust.target.Release = 8
			r.srv.offer.Release = 9
		}, code: omaha.ErrorCodeDownloadPayloadVerificationError, is: ErrMismatch},
		{name: "installer error", edit: func(r *rig) {
			r.inst.err = fail(omaha.ErrorCodeDownloadOperationHashMismatch, errors.New("operation 3: hash mismatch"))
			r.inst.failAfter = 3
		}, code: omaha.ErrorCodeDownloadOperationHashMismatch, wrote: true},
		{name: "prepare fails", edit: func(r *rig) { r.boot.err = errors.New("gpt: disk gone") }, code: omaha.ErrorCodeSetBootableFlagError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			// The target starts bootable-looking, to see that a refusal before step 5 leaves it.
			r.boot.slots[4].Priority = 1
			tt.edit(r)
			e := r.engine(t)
			_, err := e.Once(t.Context())
			if err == nil {
				t.Fatal("Once accepted the update")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if got := CodeOf(err); got != tt.code {
				t.Errorf("code %d, want %d", got, tt.code)
			}
			ev := r.srv.eventStrings()
			if len(ev) == 0 || ev[len(ev)-1] != "3/0 code="+strconv.FormatUint(uint64(tt.code), 10) {
				t.Errorf("events %v, want the last to be 3/0 code=%d", ev, tt.code)
			}
			if s := e.Snapshot(); s.Status != StatusIdle || s.LastErrorCode != uint32(tt.code) {
				t.Errorf("snapshot %+v", s)
			}
			if tt.wrote {
				if b := r.boot.slot(4); b.Priority != 0 || b.Tries != 0 || b.Successful {
					t.Errorf("target not left unbootable: %+v", b)
				}
			}
			if a := r.boot.slot(3); a.Priority < 1 || !a.Successful {
				t.Errorf("active partition changed: %+v", a)
			}
			st, _ := r.store.Load()
			if st.Pending != nil || st.Resume != nil {
				t.Errorf("state keeps pending %+v resume %+v", st.Pending, st.Resume)
			}
		})
	}
}

func TestResumeAfterTransferError(t *testing.T) {
	r := newRig(t)
	r.inst.err = fail(omaha.ErrorCodeDownloadTransferError, errors.New("connection reset"))
	r.inst.failAfter = 6
	if _, err := r.engine(t).Once(t.Context()); CodeOf(err) != omaha.ErrorCodeDownloadTransferError {
		t.Fatalf("first attempt: %v", err)
	}
	st, _ := r.store.Load()
	if st.Resume == nil || st.Resume.NextOperation != 6 {
		t.Fatalf("checkpoint after a transfer error: %+v", st.Resume)
	}
	r.inst.err = nil
	if _, err := r.engine(t).Once(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.inst.started, []int{0, 6}) {
		t.Errorf("attempts started at operations %v, want [0 6]", r.inst.started)
	}
	if r.inst.written != payloadSize {
		t.Errorf("wrote %d bytes in total, want %d", r.inst.written, payloadSize)
	}
	// A different payload does not resume from another one's checkpoint.
	st, _ = r.store.Load()
	st.Pending = nil
	st.Resume = &state.Resume{SHA256: "c29tZXRoaW5nIGVsc2U=", Target: 4, NextOperation: 5}
	r.store.Save(st)
	r.boot = newFakeBoot()
	r.opts.Boot = r.boot
	r.inst.started = nil
	if _, err := r.engine(t).Once(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.inst.started, []int{0}) {
		t.Errorf("a foreign checkpoint was used: started at %v", r.inst.started)
	}
}

func TestPostBoot(t *testing.T) {
	tests := []struct {
		name       string
		boots      int // boot-loader runs after the flip
		markGood   bool
		health     error
		wantErr    error
		wantEvents []string
		wantActive int
		wantStatus Status
	}{
		{name: "confirmed", boots: 1, wantEvents: []string{"3/2 prev=4000.0.0"}, wantActive: 4, wantStatus: StatusIdle},
		{name: "unhealthy", boots: 1, health: errors.New("health: unit kubelet.service: inactive"), wantErr: errors.New(""), wantActive: 4, wantStatus: StatusIdle},
		{name: "came back on the old partition", boots: 2, wantEvents: []string{"3/0 code=44"}, wantActive: 3, wantStatus: StatusIdle},
		{name: "not rebooted", boots: 0, wantErr: ErrNotRebooted, wantActive: 3, wantStatus: StatusUpdatedNeedReboot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			if _, err := r.engine(t).Once(t.Context()); err != nil {
				t.Fatal(err)
			}
			r.srv.events = nil
			for i := 0; i < tt.boots; i++ {
				r.boot.boot()
			}
			if tt.boots > 0 {
				r.opts.BootID = "boot-2"
			}
			r.opts.Health = fakeHealth{tt.health}
			e := r.engine(t)
			if err := e.start(t.Context()); err != nil {
				t.Fatal(err)
			}
			err := e.PostBoot(t.Context())
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatal(err)
			case tt.wantErr != nil && err == nil:
				t.Fatal("PostBoot succeeded")
			case tt.wantErr != nil && tt.wantErr.Error() != "" && !errors.Is(err, tt.wantErr):
				t.Fatalf("PostBoot = %v, want %v", err, tt.wantErr)
			}
			if got := r.srv.eventStrings(); !reflect.DeepEqual(got, tt.wantEvents) {
				t.Errorf("events %v, want %v", got, tt.wantEvents)
			}
			if r.boot.active != tt.wantActive {
				t.Errorf("active partition %d, want %d", r.boot.active, tt.wantActive)
			}
			if s := e.Snapshot(); s.Status != tt.wantStatus {
				t.Errorf("status %s, want %s", s.Status, tt.wantStatus)
			}
			b := r.boot.slot(4)
			if tt.name == "confirmed" && (!b.Successful || b.Tries != 0) {
				t.Errorf("new partition not marked good: %+v", b)
			}
			if tt.health != nil && b.Successful {
				t.Errorf("unhealthy partition marked good: %+v", b)
			}
			if tt.health != nil {
				// The next boot falls back, and the next start reports the rollback.
				r.boot.boot()
				r.opts.BootID = "boot-3"
				r.opts.Health = nil
				e := r.engine(t)
				if err := e.PostBoot(t.Context()); err != nil {
					t.Fatal(err)
				}
				if got := r.srv.eventStrings(); !reflect.DeepEqual(got, []string{"3/0 code=44"}) {
					t.Errorf("after the fallback boot: events %v", got)
				}
			}
		})
	}
}

func TestManualMarkGoodAndRollback(t *testing.T) {
	r := newRig(t)
	e := r.engine(t)
	if _, err := e.Once(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Rollback before the reboot abandons the flipped update.
	if err := e.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b := r.boot.slot(4); b.Priority != 0 || b.Tries != 0 {
		t.Errorf("abandoned target still bootable: %+v", b)
	}
	r.boot.boot()
	if r.boot.active != 3 {
		t.Errorf("booted %d after the rollback", r.boot.active)
	}
	if s := e.Snapshot(); s.Status != StatusIdle {
		t.Errorf("status %s", s.Status)
	}

	// Apply again, boot it, mark good by hand: 3/2 is reported.
	r2 := newRig(t)
	if _, err := r2.engine(t).Once(t.Context()); err != nil {
		t.Fatal(err)
	}
	r2.srv.events = nil
	r2.boot.boot()
	r2.opts.BootID = "boot-2"
	e2 := r2.engine(t)
	if err := e2.MarkGood(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := r2.srv.eventStrings(); !reflect.DeepEqual(got, []string{"3/2 prev=4000.0.0"}) {
		t.Errorf("events %v", got)
	}
	// And now roll back to the old, known-good partition.
	if err := e2.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	r2.boot.boot()
	if r2.boot.active != 3 {
		t.Errorf("rollback booted %d", r2.boot.active)
	}
}

func TestRunScheduleAndBackoff(t *testing.T) {
	r := newRig(t)
	r.srv.checkErr = errors.New("connection refused")
	e := r.engine(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()

	wait, waitCancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer waitCancel()
	var steps []time.Duration
	var total time.Duration
	for total < 24*time.Hour {
		if err := r.clk.waitArmed(wait); err != nil {
			t.Fatal(err)
		}
		if p := r.clk.pending(); len(p) != 1 {
			t.Fatalf("%d timers armed, want exactly one (no polling)", len(p))
		}
		step := r.clk.fireNext()
		steps = append(steps, step)
		total += step
	}
	// The last firing's check has run once the next timer is armed.
	if err := r.clk.waitArmed(wait); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if steps[0] < 2*time.Minute || steps[0] > 12*time.Minute {
		t.Errorf("first check after %v, want 2–12 min", steps[0])
	}
	for i, s := range steps[1:] {
		if s > 4*time.Hour {
			t.Errorf("step %d: %v above the 4 h cap", i+1, s)
		}
		if s < 45*time.Minute*3/4 {
			t.Errorf("step %d: %v, a busy loop", i+1, s)
		}
	}
	// 24 h of a dead server: at most a handful of checks, and the later ones hours apart.
	if n := len(steps); n > 15 {
		t.Errorf("%d checks in 24 h against a dead server: %v", n, steps)
	}
	if last := steps[len(steps)-1]; last < 3*time.Hour {
		t.Errorf("backoff reached only %v", last)
	}
	r.srv.mu.Lock()
	checks := r.srv.checks
	r.srv.mu.Unlock()
	if checks != len(steps) {
		t.Errorf("%d checks for %d timer firings", checks, len(steps))
	}
}

func TestRunOnDemandAndNoUpdate(t *testing.T) {
	r := newRig(t)
	r.srv.offer = nil
	r.srv.checkErr = nil
	e := r.engine(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	wait, waitCancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer waitCancel()
	if err := r.clk.waitArmed(wait); err != nil {
		t.Fatal(err)
	}
	before := e.Snapshot().Seq
	if err := e.CheckNow(); err != nil {
		t.Fatal(err)
	}
	// The on-demand check runs and a new timer for the normal interval is armed.
	if err := r.clk.waitArmed(wait); err != nil {
		t.Fatal(err)
	}
	s, _ := e.Wait(wait, before)
	for s.LastChecked.IsZero() {
		if s, _ = e.Wait(wait, s.Seq); wait.Err() != nil {
			t.Fatal("no check recorded")
		}
	}
	if p := r.clk.pending(); len(p) != 1 || p[0] < 40*time.Minute || p[0] > 50*time.Minute {
		t.Errorf("after a noupdate: timers %v, want one in 40–50 min", p)
	}
	r.srv.mu.Lock()
	od := append([]bool(nil), r.srv.onDemand...)
	r.srv.mu.Unlock()
	if !reflect.DeepEqual(od, []bool{true}) {
		t.Errorf("checks (onDemand) %v", od)
	}
	cancel()
	<-done
}

func TestTransitionTable(t *testing.T) {
	for _, from := range Statuses() {
		if len(transitions(from)) == 0 {
			t.Errorf("%s has no way out", from)
		}
		for _, to := range transitions(from) {
			if from == to {
				t.Errorf("%s moves to itself", from)
			}
		}
	}
	if CanMove(StatusIdle, StatusDownloading) {
		t.Error("IDLE → DOWNLOADING allowed")
	}
}

type countingRebooter struct {
	mu               sync.Mutex
	reboots, release int
	called           chan struct{} // when set, notified of Reboot calls (never blocks)
}

func (c *countingRebooter) Reboot(context.Context) error {
	c.mu.Lock()
	c.reboots++
	c.mu.Unlock()
	if c.called != nil {
		select {
		case c.called <- struct{}{}:
		default:
		}
	}
	return nil
}

func (c *countingRebooter) Release(context.Context) error {
	c.mu.Lock()
	c.release++
	c.mu.Unlock()
	return nil
}

func (c *countingRebooter) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reboots, c.release
}

func TestRunRebootsAndReleases(t *testing.T) {
	r := newRig(t)
	rb := &countingRebooter{called: make(chan struct{}, 1)}
	r.opts.Rebooter = rb
	r.opts.Policy.FirstDelay, r.opts.Policy.FirstFuzz = 0, 0
	e := r.engine(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	wait, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer wcancel()
	// Start: nothing pending, so a stale slot is released once.
	if err := r.clk.waitArmed(wait); err != nil {
		t.Fatal(err)
	}
	r.clk.fireNext()
	s := e.Snapshot()
	for s.Status != StatusUpdatedNeedReboot {
		var err error
		if s, err = e.Wait(wait, s.Seq); err != nil {
			t.Fatalf("no update applied: %+v", s)
		}
	}
	select {
	case <-rb.called:
	case <-wait.Done():
		t.Fatal("the reboot strategy was not started")
	}
	cancel()
	<-done
	if _, rel := rb.counts(); rel != 1 {
		t.Errorf("released %d times before the reboot, want 1 (the start-up release)", rel)
	}
	// After the reboot into the new partition: confirmed, then the slot is released.
	r.boot.boot()
	r.opts.BootID = "boot-2"
	e2 := r.engine(t)
	ctx2, cancel2 := context.WithCancel(t.Context())
	go func() { done <- e2.Run(ctx2) }()
	if err := r.clk.waitArmed(wait); err != nil {
		t.Fatal(err)
	}
	cancel2()
	<-done
	if _, rel := rb.counts(); rel != 2 {
		t.Errorf("released %d times in total, want 2", rel)
	}
	if got := r.srv.eventStrings(); got[len(got)-1] != "3/2 prev=4000.0.0" {
		t.Errorf("events %v", got)
	}
}

func TestCrashBetweenFlipAndState(t *testing.T) {
	r := newRig(t)
	if _, err := r.engine(t).Once(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The state as a crash right after the flip would leave it.
	st, _ := r.store.Load()
	st.Pending.Phase, st.Pending.FlipBootID = state.PhaseDownloading, ""
	r.store.Save(st)
	r.srv.events = nil
	r.boot.boot()
	r.opts.BootID = "boot-2"
	if err := r.engine(t).PostBoot(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := r.srv.eventStrings(); !reflect.DeepEqual(got, []string{"3/2 prev=4000.0.0"}) {
		t.Errorf("events %v", got)
	}
	if b := r.boot.slot(4); !b.Successful {
		t.Errorf("target not marked good: %+v", b)
	}
}

// failingRebooter fails its first Reboot, as a reboot command that exits non-zero or an
// etcd that is down would, then succeeds.
type failingRebooter struct{ countingRebooter }

func (f *failingRebooter) Reboot(ctx context.Context) error {
	f.countingRebooter.Reboot(ctx)
	if n, _ := f.counts(); n == 1 {
		return errors.New("reboot command exited 1")
	}
	return nil
}

// TestRunRetriesFailedReboot: a failed reboot is tried again at a later cycle instead of
// leaving the host in UPDATED_NEED_REBOOT until the daemon restarts.
func TestRunRetriesFailedReboot(t *testing.T) {
	r := newRig(t)
	rb := &failingRebooter{}
	r.opts.Rebooter = rb
	r.opts.Policy.FirstDelay, r.opts.Policy.FirstFuzz = 0, 0
	e := r.engine(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wait, wcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer wcancel()
	for {
		if n, _ := rb.counts(); n >= 2 {
			break
		}
		if err := r.clk.waitArmed(wait); err != nil {
			n, _ := rb.counts()
			t.Fatalf("%d reboot attempts, want a second one after the first failed", n)
		}
		r.clk.fireNext()
		time.Sleep(5 * time.Millisecond)
	}
	if s := e.Snapshot(); s.Status != StatusUpdatedNeedReboot {
		t.Errorf("status %s, want %s", s.Status, StatusUpdatedNeedReboot)
	}
}

func TestTruncateKeepsCharacters(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"}, // é is two bytes: cut before it, not inside
		{"ééé", 5, "éé"},
	}
	for _, tt := range tests {
		if got := truncate(tt.in, tt.n); got != tt.want || !utf8.ValidString(got) {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// ctxBoot reads the partition table only while ctx lasts, as the real disk does.
type ctxBoot struct{ *fakeBoot }

func (b ctxBoot) Slots(ctx context.Context) (slots.Slot, slots.Slot, error) {
	if err := ctx.Err(); err != nil {
		return slots.Slot{}, slots.Slot{}, err
	}
	return b.fakeBoot.Slots(ctx)
}

// TestRunStoppedDuringStart: a stop (SIGTERM) that lands while the daemon still reads the
// disk at start is a clean stop, not an error (systemd would log a failed unit).
func TestRunStoppedDuringStart(t *testing.T) {
	r := newRig(t)
	r.opts.Boot = ctxBoot{r.boot}
	e := r.engine(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatalf("Run stopped during its start: %v, want nil", err)
	}
}
