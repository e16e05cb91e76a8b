package engine

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/switchyard-os/switchyard/omaha"
)

// Media is a release on local media, for air-gapped hosts (update-engine/media reads a
// directory or a tar stream).
type Media interface {
	// Release verifies the media's TUF metadata against the host's trusted root and cache
	// and returns the target the media's payload is, as TUF pins it.
	Release(ctx context.Context) (Target, error)
	// Open returns the payload from byte 0. It is called at most once, after Release.
	Open(ctx context.Context) (io.ReadCloser, error)
}

// ErrLocalPayloadReopened: the installer asked the media for the payload at an offset other
// than 0 (a stream cannot seek back).
var ErrLocalPayloadReopened = errors.New("engine: local media payloads are read once, from the start")

// InstallLocal installs the release on m the way a cycle installs an offer, with the same
// checks: the version must be above the running one, the clock not before the last verified
// time, TUF must pin the payload for this board with a release counter above the running
// one, then the target is made unbootable, the payload verified and written, and the GPT
// flipped (steps 2–7 of the package doc). Nothing is reported to the Omaha server. The
// statuses move as in a cycle: CHECKING_FOR_UPDATE while the media's metadata is verified,
// UPDATE_AVAILABLE, DOWNLOADING, ... UPDATED_NEED_REBOOT, or IDLE with LastError set.
//
// It returns ErrBusy while a cycle runs and ErrNeedReboot while a flipped update waits for
// its reboot. When Run is running, its loop starts the reboot strategy after a success.
func (e *Engine) InstallLocal(ctx context.Context, m Media) (Snapshot, error) {
	if !e.work.TryLock() {
		return e.Snapshot(), ErrBusy
	}
	defer e.work.Unlock()
	if err := e.start(ctx); err != nil {
		return e.Snapshot(), err
	}
	if e.status() == StatusUpdatedNeedReboot {
		return e.Snapshot(), ErrNeedReboot
	}
	st, err := e.o.Store.Load()
	if err != nil {
		return e.Snapshot(), err
	}
	now := e.clk.Now()
	e.update(func(s *Snapshot) { s.Status = StatusCheckingForUpdate; s.LastError = ""; s.LastErrorCode = 0 })
	e.log.Info("installing from local media")
	tgt, err := m.Release(ctx)
	if err != nil {
		err = fail(omaha.ErrorCodeDownloadPayloadVerificationError, fmt.Errorf("%w: %w", ErrTrust, err))
		e.update(func(s *Snapshot) {
			s.Status = StatusIdle
			s.LastError = err.Error()
			s.LastErrorCode = uint32(CodeOf(err))
		})
		return e.Snapshot(), err
	}
	offer := &omaha.Offer{Version: tgt.Version, SHA256: tgt.SHA256, Release: tgt.Release}
	offer.Package.Size = uint64(max(tgt.Length, 0))
	e.update(func(s *Snapshot) {
		s.Status = StatusUpdateAvailable
		s.NewVersion = tgt.Version
		s.NewSize = tgt.Length
		s.Progress, s.BytesDone, s.BytesTotal = 0, 0, tgt.Length
		e.lastPct = 0
	})
	open := func(ctx context.Context, off int64) (io.ReadCloser, error) {
		if off != 0 {
			return nil, ErrLocalPayloadReopened
		}
		return m.Open(ctx)
	}
	err = e.apply(ctx, now, &st, offer, localTrust(tgt), open)
	if err == nil {
		select {
		case e.installed <- struct{}{}:
		default:
		}
		return e.Snapshot(), nil
	}
	code := CodeOf(err)
	e.log.Error("local install failed", "version", tgt.Version, "code", uint32(code), "err", err)
	e.update(func(s *Snapshot) {
		s.Status = StatusReportingErrorEvent
		s.LastError = err.Error()
		s.LastErrorCode = uint32(code)
	})
	e.setStatus(StatusIdle)
	return e.Snapshot(), err
}

// localTrust is the target the media's metadata vouched for, as the engine's Trust.
type localTrust Target

func (t localTrust) Lookup(_ context.Context, version, _, source string) (Target, error) {
	if source != "" {
		return Target{}, fmt.Errorf("engine: the media holds a full payload, not a delta from %s", source)
	}
	if t.Version != version {
		return Target{}, fmt.Errorf("engine: the media's target is version %s, not %s", t.Version, version)
	}
	return Target(t), nil
}
