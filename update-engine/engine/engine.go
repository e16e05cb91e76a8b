package engine

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/update-engine/metrics"
	"github.com/switchyard-os/switchyard/update-engine/schedule"
	"github.com/switchyard-os/switchyard/update-engine/state"
)

// Options wires an Engine.
type Options struct {
	Server    Server
	Trust     Trust
	Boot      Boot
	Installer Installer
	Rebooter  Rebooter // nil: strategy off
	Health    Health   // nil: no checks
	// PostReboot runs once an update is confirmed after its reboot, or its rollback
	// recorded, before the reboot lock is released; nil: none.
	PostReboot Hook
	Store      StateStore

	Clock   Clock      // nil: RealClock
	Rand    *rand.Rand // nil: seeded from the clock
	Log     *slog.Logger
	Metrics *metrics.Metrics // nil: none
	Policy  schedule.Policy

	Version        string // the running version
	Board          string
	BootID         string
	BuildTime      time.Time
	RebootStrategy string // for status display
}

// Engine is the update state machine. Its methods are safe for concurrent use; one update
// cycle runs at a time.
type Engine struct {
	o   Options
	log *slog.Logger
	clk Clock
	rnd *rand.Rand

	work     sync.Mutex // held by a cycle, mark-good and rollback
	checkNow chan struct{}
	// installed is signalled by InstallLocal after a flip, for the Run loop.
	installed chan struct{}

	mu      sync.Mutex
	snap    Snapshot
	changed chan struct{}
	lastPct float64

	// owned by the Run goroutine
	failures int
	poll     time.Duration
	rmu      sync.Mutex
	reboot   *rebootAttempt // one runs, or one rebooted; nil: none
	// resetting keeps a new reboot attempt from starting while ResetStatus abandons the
	// update it would reboot into.
	resetting bool
	wg        sync.WaitGroup // the reboot goroutines; Run waits for them
}

// rebootAttempt is one run of the Rebooter in its own goroutine.
type rebootAttempt struct {
	cancel   context.CancelFunc
	done     chan struct{}
	rebooted bool // set before done closes: the reboot was requested
}

// New returns an engine; it reads nothing until Run, Once or PostBoot.
func New(o Options) (*Engine, error) {
	if o.Server == nil || o.Trust == nil || o.Boot == nil || o.Installer == nil || o.Store == nil {
		return nil, errors.New("engine: Server, Trust, Boot, Installer and Store are required")
	}
	if _, err := omaha.ParseVersion(o.Version); err != nil {
		return nil, fmt.Errorf("engine: the running version: %w", err)
	}
	e := &Engine{o: o, log: o.Log, clk: o.Clock, rnd: o.Rand, checkNow: make(chan struct{}, 1), installed: make(chan struct{}, 1), changed: make(chan struct{})}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.clk == nil {
		e.clk = RealClock{}
	}
	if e.rnd == nil {
		t := uint64(e.clk.Now().UnixNano())
		e.rnd = rand.New(rand.NewPCG(t, t^0x9e3779b97f4a7c15))
	}
	e.snap = Snapshot{Status: StatusIdle, CurrentVersion: o.Version, RebootStrategy: o.RebootStrategy}
	o.Metrics.SetStatus(string(StatusIdle))
	return e, nil
}

// Snapshot returns the current status.
func (e *Engine) Snapshot() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.snap
}

// Wait returns the first snapshot whose Seq is above after, or the current one when ctx ends.
func (e *Engine) Wait(ctx context.Context, after uint64) (Snapshot, error) {
	for {
		e.mu.Lock()
		s, ch := e.snap, e.changed
		e.mu.Unlock()
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

// update changes the snapshot under the lock and wakes waiters.
func (e *Engine) update(f func(*Snapshot)) {
	e.mu.Lock()
	old := e.snap.Status
	f(&e.snap)
	e.snap.Seq++
	if e.snap.Status != old {
		if !CanMove(old, e.snap.Status) {
			// A programming error, logged loudly rather than panicking in a daemon.
			e.log.Error("status transition outside the table", "from", old, "to", e.snap.Status)
		}
		e.o.Metrics.SetStatus(string(e.snap.Status))
	}
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

func (e *Engine) setStatus(s Status) {
	e.update(func(sn *Snapshot) { sn.Status = s })
}

func (e *Engine) status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.snap.Status
}

// CheckNow asks the Run loop for an on-demand check.
func (e *Engine) CheckNow() error {
	if !e.status().Settled() {
		return ErrBusy
	}
	select {
	case e.checkNow <- struct{}{}:
	default: // one is already queued
	}
	return nil
}

// Run is the daemon: post-boot work, then checks on the schedule until ctx ends. It returns
// nil when ctx ends, also when that happens while it is still starting.
func (e *Engine) Run(ctx context.Context) error {
	// The reboot goroutine works under ctx: once ctx ends it ends, and Run waits for it.
	defer e.wg.Wait()
	if err := e.start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting: a stop, like any other
		}
		return err
	}
	switch err := e.PostBoot(ctx); {
	case errors.Is(err, ErrNoPending):
		// Nothing waits for confirmation, so this host holds no reboot-lock slot: give back
		// one a crash may have left between mark-good and release (idempotent).
		e.release(ctx)
	case err != nil && !errors.Is(err, ErrNotRebooted):
		e.log.Error("post-boot work failed", "err", err)
	}
	if e.status() == StatusUpdatedNeedReboot {
		e.startReboot(ctx)
	}
	delay := e.o.Policy.First(e.rnd)
	for {
		next := e.clk.Now().Add(delay)
		e.update(func(s *Snapshot) { s.NextCheck = next })
		e.o.Metrics.NextCheck(next)
		e.log.Debug("next check scheduled", "in", delay.Round(time.Second))
		t := e.clk.NewTimer(delay)
		onDemand := false
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		case <-e.checkNow:
			t.Stop()
			onDemand = true
		case <-e.installed:
			// A local install flipped the disk: the reboot strategy applies now, not at
			// the next scheduled check.
			t.Stop()
			e.startReboot(ctx)
			continue
		}
		err := e.cycle(ctx, onDemand)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			e.log.Warn("update cycle failed", "err", err, "failures", e.failures)
		}
		delay = e.o.Policy.Next(e.rnd, e.failures, e.poll)
		if e.status() == StatusUpdatedNeedReboot {
			e.startReboot(ctx)
		}
	}
}

func (e *Engine) startReboot(ctx context.Context) {
	if e.o.Rebooter == nil {
		return
	}
	e.rmu.Lock()
	defer e.rmu.Unlock()
	if e.reboot != nil || e.resetting {
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	a := &rebootAttempt{cancel: cancel, done: make(chan struct{})}
	e.reboot = a
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer cancel()
		defer close(a.done)
		e.log.Info("update applied: waiting for the reboot window and lock", "strategy", e.o.RebootStrategy)
		err := e.o.Rebooter.Reboot(rctx)
		if err == nil {
			a.rebooted = true
			e.update(func(s *Snapshot) { s.RebootPostponed = "" })
			return
		}
		if rctx.Err() == nil {
			// The next cycle tries again (the window, the lock and the command are re-checked).
			e.log.Error("reboot failed; trying again at the next cycle", "err", err)
		}
		e.rmu.Lock()
		if e.reboot == a {
			e.reboot = nil
		}
		e.rmu.Unlock()
	}()
}

// stopReboot cancels the running reboot attempt and waits for it to end. It fails when the
// attempt already requested the reboot.
func (e *Engine) stopReboot(ctx context.Context) error {
	e.rmu.Lock()
	a := e.reboot
	e.rmu.Unlock()
	if a == nil {
		return nil
	}
	a.cancel()
	select {
	case <-a.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if a.rebooted {
		return ErrRebooting
	}
	e.rmu.Lock()
	if e.reboot == a {
		e.reboot = nil
	}
	e.rmu.Unlock()
	return nil
}

// RebootPostponed records that the reboot strategy postponed the reboot (its pre-reboot
// hook failed); the status shows it until the reboot is requested or the status reset. The
// daemon wires it to the strategy's Postponed hook.
func (e *Engine) RebootPostponed(err error) {
	e.update(func(s *Snapshot) { s.RebootPostponed = err.Error() })
}

// start loads the state, initialises the aleph version and the displayed status.
func (e *Engine) start(ctx context.Context) error {
	st, err := e.o.Store.Load()
	if err != nil {
		return err
	}
	if st.AlephVersion == "" {
		st.AlephVersion = e.o.Version
		if err := e.o.Store.Save(st); err != nil {
			return err
		}
	}
	active, target, err := e.o.Boot.Slots(ctx)
	if err != nil {
		return fmt.Errorf("engine: reading the partition table: %w", err)
	}
	e.update(func(s *Snapshot) {
		s.LastChecked = st.LastCheck
		s.ActivePartition = active.Label
		s.TargetPartition = target.Label
		if p := st.Pending; p != nil && p.Phase == state.PhaseFlipped && p.FlipBootID == e.o.BootID {
			s.Status = StatusUpdatedNeedReboot
			s.NewVersion, s.NewSize, s.Progress = p.Version, p.Size, 1
		}
	})
	return nil
}

// Once checks for an update and, if one is offered, applies and flips it; it stops before the
// reboot. It returns the snapshot at the end.
func (e *Engine) Once(ctx context.Context) (Snapshot, error) {
	if err := e.start(ctx); err != nil {
		return e.Snapshot(), err
	}
	if e.status() == StatusUpdatedNeedReboot {
		return e.Snapshot(), ErrNeedReboot
	}
	err := e.cycle(ctx, true)
	return e.Snapshot(), err
}

// cycle is one check and, when offered, one update attempt.
func (e *Engine) cycle(ctx context.Context, onDemand bool) error {
	if !e.work.TryLock() {
		return ErrBusy
	}
	defer e.work.Unlock()
	if e.status() == StatusUpdatedNeedReboot {
		if err := e.o.Server.Ping(ctx); err != nil {
			e.failures++
			return fmt.Errorf("engine: ping: %w", err)
		}
		e.failures = 0
		return nil
	}
	st, err := e.o.Store.Load()
	if err != nil {
		return err
	}
	e.update(func(s *Snapshot) { s.Status = StatusCheckingForUpdate; s.LastError = ""; s.LastErrorCode = 0 })
	e.log.Info("checking for an update", "on_demand", onDemand)
	offer, err := e.o.Server.Check(ctx, onDemand)
	now := e.clk.Now()
	if err != nil {
		e.failures++
		e.o.Metrics.Check(now, "error")
		code := CodeOf(err)
		if refusedAnswer(code) && ctx.Err() == nil {
			// The server answered, but with nothing usable: tell it, as Flatcar does.
			e.log.Error("update check answer refused", "code", uint32(code), "err", err)
			e.update(func(s *Snapshot) {
				s.Status = StatusReportingErrorEvent
				s.LastError = err.Error()
				s.LastErrorCode = uint32(code)
			})
			e.report(ctx, omaha.EventError(code, truncate(err.Error(), 200)))
		}
		e.update(func(s *Snapshot) {
			s.Status = StatusIdle
			s.LastError = err.Error()
			s.LastErrorCode = uint32(code)
		})
		return fmt.Errorf("engine: update check: %w", err)
	}
	e.failures = 0
	st.LastCheck = now
	if err := e.o.Store.Save(st); err != nil {
		e.log.Warn("saving the check time", "err", err)
	}
	if offer == nil {
		e.poll = 0
		e.o.Metrics.Check(now, "noupdate")
		e.log.Info("no update available")
		e.update(func(s *Snapshot) { s.Status = StatusIdle; s.LastChecked = now })
		return nil
	}
	e.poll = time.Duration(offer.PollInterval) * time.Second
	e.o.Metrics.Check(now, "update")
	e.log.Info("update available", "version", offer.Version, "size", offer.Package.Size)
	e.update(func(s *Snapshot) {
		s.Status = StatusUpdateAvailable
		s.LastChecked = now
		s.NewVersion = offer.Version
		s.NewSize = int64(offer.Package.Size)
		s.Progress, s.BytesDone, s.BytesTotal = 0, 0, int64(offer.Package.Size)
		e.lastPct = 0
	})
	err = e.apply(ctx, now, &st, offer, e.o.Trust, nil)
	if err != nil && ctx.Err() == nil && offer.IsDeltaPayload && CodeOf(err).Base() == omaha.ErrorCodeDeltaSourceMismatch {
		full, ferr := e.fullInstead(ctx, onDemand, err)
		if full == nil {
			return ferr
		}
		offer = full
		err = e.apply(ctx, now, &st, offer, e.o.Trust, nil)
	}
	if err == nil {
		e.o.Metrics.Update(0)
		return nil
	}
	if ctx.Err() != nil {
		// The daemon is stopping: no report, the checkpoint stays for the next start.
		e.update(func(s *Snapshot) { s.Status = StatusReportingErrorEvent })
		e.update(func(s *Snapshot) { s.Status = StatusIdle; s.LastError = err.Error() })
		return err
	}
	code := CodeOf(err)
	e.o.Metrics.Update(uint32(code))
	e.log.Error("update failed", "version", offer.Version, "code", uint32(code), "err", err)
	e.update(func(s *Snapshot) {
		s.Status = StatusReportingErrorEvent
		s.LastError = err.Error()
		s.LastErrorCode = uint32(code)
	})
	if rerr := e.o.Server.Report(ctx, omaha.EventError(code, truncate(err.Error(), 200))); rerr != nil {
		e.log.Warn("reporting the error event", "err", rerr)
	}
	e.setStatus(StatusIdle)
	return err
}

// fullInstead is the fallback after a delta payload did not fit the active partition
// (derr, code 1001, found before anything was written): it reports derr as 3/0, checks in
// again with delta_okay="false" and returns the full payload's offer, the status at
// UPDATE_AVAILABLE. Without one (no answer, noupdate, or a delta again) it returns nil and
// the error that ends the cycle, the status back at IDLE.
func (e *Engine) fullInstead(ctx context.Context, onDemand bool, derr error) (*omaha.Offer, error) {
	code := CodeOf(derr)
	e.o.Metrics.Update(uint32(code))
	e.log.Warn("the delta payload does not fit the active partition: checking again for the full payload", "code", uint32(code), "err", derr)
	e.update(func(s *Snapshot) {
		s.Status = StatusReportingErrorEvent
		s.LastError = derr.Error()
		s.LastErrorCode = uint32(code)
	})
	e.report(ctx, omaha.EventError(code, truncate(derr.Error(), 200)))
	e.setStatus(StatusIdle)
	e.update(func(s *Snapshot) { s.Status = StatusCheckingForUpdate })
	offer, err := e.o.Server.CheckFull(ctx, onDemand)
	switch {
	case err != nil:
		err = fmt.Errorf("engine: update check for the full payload: %w", err)
	case offer == nil:
		err = derr // the server has nothing else: the cycle ends with the delta's failure
	case offer.IsDeltaPayload:
		err = fail(omaha.ErrorCodeOmahaResponseInvalid, errors.New(`engine: the server offered a delta payload to delta_okay="false"`))
	}
	if err != nil {
		e.failures++
		e.update(func(s *Snapshot) {
			s.Status = StatusIdle
			s.LastError = err.Error()
			s.LastErrorCode = uint32(CodeOf(err))
		})
		return nil, err
	}
	e.log.Info("full payload offered instead", "version", offer.Version, "size", offer.Package.Size)
	e.update(func(s *Snapshot) {
		s.Status = StatusUpdateAvailable
		s.NewVersion = offer.Version
		s.NewSize = int64(offer.Package.Size)
		s.Progress, s.BytesDone, s.BytesTotal = 0, 0, int64(offer.Package.Size)
		e.lastPct = 0
	})
	return offer, nil
}

// refusedAnswer reports whether code is an update check the server answered with HTTP 200
// and a body the host refuses: empty (30), not Omaha XML (31), or an error status or an
// invalid offer (34). Those are reported as 3/0 with the code, like every failure after the
// check; a check that got no answer (2) or an HTTP error status (2000+) is not, since the
// server either never heard it or already knows what it answered.
func refusedAnswer(code omaha.ErrorCode) bool {
	switch code.Base() {
	case omaha.ErrorCodeOmahaRequestEmptyResponseError, omaha.ErrorCodeOmahaRequestXMLParseError, omaha.ErrorCodeOmahaResponseInvalid:
		return true
	}
	return false
}

// truncate shortens s to at most n bytes without cutting a character in half.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// apply runs steps 2–7 of the package doc for one offer, vouched for by tr. A local install
// (InstallLocal) passes the media's payload as open: then no event is reported and no
// checkpoint resumed.
func (e *Engine) apply(ctx context.Context, ref time.Time, st *state.State, offer *omaha.Offer, tr Trust, open func(context.Context, int64) (io.ReadCloser, error)) error {
	local := open != nil
	// Step 2: never downgrade, never re-install the running version.
	running, _ := omaha.ParseVersion(e.o.Version)
	offered, err := omaha.ParseVersion(offer.Version)
	if err != nil {
		return fail(omaha.ErrorCodeOmahaResponseInvalid, err)
	}
	if !running.Less(offered) {
		return fail(omaha.ErrorCodeOmahaUpdateIgnoredPerPolicy, fmt.Errorf("%w: %s offered, %s running", ErrDowngrade, offer.Version, e.o.Version))
	}
	// Step 3: clock sanity, against the build time and the last successful TUF refresh.
	for _, floor := range []struct {
		what string
		t    time.Time
	}{{"the build time", e.o.BuildTime}, {"the last verified TUF refresh", st.TUFTimestamp}} {
		if !floor.t.IsZero() && ref.Before(floor.t) {
			return fail(omaha.ErrorCodeDownloadStateInitializationError,
				fmt.Errorf("%w: now %s is before %s (%s)", ErrClock, ref.UTC().Format(time.RFC3339), floor.what, floor.t.UTC().Format(time.RFC3339)))
		}
	}
	// Step 4: TUF. A delta payload is its own target, from the running version.
	source := ""
	if offer.IsDeltaPayload {
		source = e.o.Version
	}
	tgt, err := tr.Lookup(ctx, offer.Version, e.o.Board, source)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fail(omaha.ErrorCodeDownloadPayloadVerificationError, fmt.Errorf("%w: %w", ErrTrust, err))
	}
	if tgt.SourceVersion != source {
		return fail(omaha.ErrorCodeDownloadPayloadVerificationError,
			fmt.Errorf("%w: TUF target %s applies to %q, the offer to %q", ErrTrust, tgt.Name, tgt.SourceVersion, source))
	}
	if tgt.Version != "" && tgt.Version != offer.Version || tgt.Board != "" && e.o.Board != "" && tgt.Board != e.o.Board {
		return fail(omaha.ErrorCodeDownloadPayloadVerificationError,
			fmt.Errorf("%w: TUF target is %s for %s, the offer %s for %s", ErrTrust, tgt.Version, tgt.Board, offer.Version, e.o.Board))
	}
	if tgt.Length != int64(offer.Package.Size) {
		return fail(omaha.ErrorCodePayloadSizeMismatchError,
			fmt.Errorf("%w: Omaha says %d bytes, TUF %d", ErrMismatch, offer.Package.Size, tgt.Length))
	}
	if !bytes.Equal(tgt.SHA256, offer.SHA256) {
		return fail(omaha.ErrorCodePayloadHashMismatchError,
			fmt.Errorf("%w: Omaha says SHA-256 %x, TUF %x", ErrMismatch, offer.SHA256, tgt.SHA256))
	}
	// The release counter only moves forward (DESIGN.md section 7), and Omaha's counter,
	// when it sends one, is TUF's.
	if st.Release > 0 && tgt.Release <= st.Release {
		return fail(omaha.ErrorCodeOmahaUpdateIgnoredPerPolicy,
			fmt.Errorf("%w: release counter %d is not above the running %d", ErrDowngrade, tgt.Release, st.Release))
	}
	if offer.Release != 0 && tgt.Release != 0 && offer.Release != tgt.Release {
		return fail(omaha.ErrorCodeDownloadPayloadVerificationError,
			fmt.Errorf("%w: Omaha says release %d, TUF %d", ErrMismatch, offer.Release, tgt.Release))
	}
	if h := offer.Package.HashSHA256; h != "" {
		// Hex from Nebraska and omaha-server, base64 from go-omaha: either must be TUF's.
		if b, err := omaha.ParseHashSHA256(h); err != nil || !bytes.Equal(b, tgt.SHA256) {
			return fail(omaha.ErrorCodePayloadHashMismatchError,
				fmt.Errorf("%w: package hash_sha256 %s is not TUF's %x", ErrMismatch, h, tgt.SHA256))
		}
	}
	st.TUFTimestamp = ref
	// Step 5: the target becomes unbootable before a byte is written.
	active, target, err := e.o.Boot.Slots(ctx)
	if err != nil {
		return fail(omaha.ErrorCodeInstallDeviceOpenError, err)
	}
	if target.Number == active.Number || target.Number == 0 {
		return fail(omaha.ErrorCodeInstallDeviceOpenError, fmt.Errorf("engine: no inactive USR partition (active %d)", active.Number))
	}
	if err := e.o.Boot.Prepare(ctx, target.Number); err != nil {
		return fail(omaha.ErrorCodeSetBootableFlagError, fmt.Errorf("engine: making partition %d unbootable: %w", target.Number, err))
	}
	sum := base64.StdEncoding.EncodeToString(offer.SHA256)
	resume := st.Resume
	if resume != nil && (local || resume.SHA256 != sum || resume.Target != target.Number) {
		resume = nil
	}
	if resume != nil {
		resume.Attempts++
	}
	st.Resume = resume
	st.Pending = &state.Pending{
		Version: offer.Version, FromVersion: e.o.Version, Size: int64(offer.Package.Size), SHA256: sum,
		Target: target.Number, TargetLabel: target.Label, Source: active.Number, Release: tgt.Release,
		Phase: state.PhaseDownloading, Since: ref.UTC(),
	}
	if err := e.o.Store.Save(*st); err != nil {
		return fail(omaha.ErrorCodeDownloadStateInitializationError, err)
	}
	if !local {
		e.report(ctx, omaha.EventDownloadStarted())
	}
	e.update(func(s *Snapshot) {
		s.Status = StatusDownloading
		s.ActivePartition, s.TargetPartition = active.Label, target.Label
	})
	if resume != nil {
		e.log.Info("resuming the download", "operation", resume.NextOperation, "offset", resume.Offset)
	}
	// Step 6: install.
	var lastDone int64
	job := &Job{
		Offer: offer, Target: tgt, Partition: target.Number, Source: active.Number, Resume: resume,
		Progress: func(done, total int64) {
			if d := done - lastDone; d > 0 {
				e.o.Metrics.Downloaded(d)
			}
			lastDone = done
			e.progress(done, total)
		},
		Checkpoint: func(r state.Resume) error {
			r.SHA256, r.Target = sum, target.Number
			if resume != nil {
				r.Attempts = resume.Attempts
			}
			st.Resume = &r
			return e.o.Store.Save(*st)
		},
		Verifying: func() { e.setStatus(StatusVerifying) },
		Open:      open,
	}
	if err := e.o.Installer.Install(ctx, job); err != nil {
		if ctx.Err() == nil && !isTransfer(err) {
			// Only an interrupted transfer is resumed; anything the payload itself got wrong
			// starts over next time.
			st.Resume = nil
		}
		st.Pending = nil
		if serr := e.o.Store.Save(*st); serr != nil {
			e.log.Warn("saving state after a failed install", "err", serr)
		}
		return err
	}
	if e.status() == StatusDownloading {
		e.setStatus(StatusVerifying)
	}
	if !local {
		e.report(ctx, omaha.EventDownloadFinished())
	}
	// Step 7: flip.
	e.setStatus(StatusFinalizing)
	if err := e.o.Boot.Flip(ctx, target.Number); err != nil {
		st.Pending, st.Resume = nil, nil
		if serr := e.o.Store.Save(*st); serr != nil {
			e.log.Warn("saving state after a failed flip", "err", serr)
		}
		return fail(omaha.ErrorCodeSetBootableFlagError, fmt.Errorf("engine: flipping to partition %d: %w", target.Number, err))
	}
	st.Pending.Phase = state.PhaseFlipped
	st.Pending.FlipBootID = e.o.BootID
	st.Resume = nil
	st.AddHistory(e.clk.Now(), offer.Version, "flipped to "+target.Label)
	if err := e.o.Store.Save(*st); err != nil {
		// The GPT already says "boot the target once"; without the state the post-boot work
		// cannot report 3/2, but the boot protocol alone stays safe.
		e.log.Error("saving the flipped state", "err", err)
	}
	if !local {
		e.report(ctx, omaha.EventInstalled())
	}
	e.log.Info("update applied, reboot needed", "version", offer.Version, "partition", target.Label)
	e.update(func(s *Snapshot) { s.Status = StatusUpdatedNeedReboot; s.Progress = 1 })
	return nil
}

// isTransfer reports whether err is a download transfer error (code 9), the kind a later
// attempt resumes from the checkpoint.
func isTransfer(err error) bool {
	return CodeOf(err).Base() == omaha.ErrorCodeDownloadTransferError
}

func (e *Engine) progress(done, total int64) {
	f := 0.0
	if total > 0 {
		f = float64(done) / float64(total)
	}
	e.o.Metrics.Progress(f)
	e.mu.Lock()
	small := f-e.lastPct < 0.005 && done != total
	e.mu.Unlock()
	if small {
		// Keep the byte counters fresh without waking every watcher.
		e.mu.Lock()
		e.snap.BytesDone, e.snap.BytesTotal = done, total
		e.mu.Unlock()
		return
	}
	e.mu.Lock()
	e.lastPct = f
	e.mu.Unlock()
	e.update(func(s *Snapshot) { s.Progress, s.BytesDone, s.BytesTotal = f, done, total })
}

// report sends events, logging failures (events are fire and forget, as in Flatcar).
func (e *Engine) report(ctx context.Context, evs ...*omaha.Event) {
	if err := e.o.Server.Report(ctx, evs...); err != nil {
		e.log.Warn("reporting an event", "err", err)
	}
}
