package engine

import (
	"context"
	"crypto/sha256"
	"errors"
	"reflect"
	"testing"

	"github.com/switchyard-os/switchyard/omaha"
)

const deltaSize = 1 << 20

var deltaSum = sha256.Sum256([]byte("delta"))

func deltaOffer() *omaha.Offer {
	return &omaha.Offer{
		Version: "4001.0.0", URLs: []string{"https://updates.example/4001.0.0/"},
		Package: omaha.Package{Name: "delta-4000.0.0.sy", Size: deltaSize}, SHA256: deltaSum[:], IsDeltaPayload: true,
	}
}

func deltaTarget(source string) *Target {
	return &Target{Name: "amd64-usr/4001.0.0/delta-4000.0.0.sy", Length: deltaSize, SHA256: deltaSum[:],
		Version: "4001.0.0", Board: "amd64-usr", SourceVersion: source}
}

// deltaInstaller fails delta jobs with deltaErr (before writing anything) and installs
// everything else with the fake installer; it records every job.
type deltaInstaller struct {
	*fakeInstaller
	deltaErr error
	jobs     []Job
}

func (d *deltaInstaller) Install(ctx context.Context, job *Job) error {
	d.jobs = append(d.jobs, *job)
	if job.Offer.IsDeltaPayload && d.deltaErr != nil {
		return d.deltaErr
	}
	return d.fakeInstaller.Install(ctx, job)
}

func deltaRig(t *testing.T, deltaErr error) (*rig, *deltaInstaller) {
	r := newRig(t)
	r.srv.offer, r.srv.full = deltaOffer(), testOffer()
	r.trust.delta = deltaTarget("4000.0.0")
	di := &deltaInstaller{fakeInstaller: r.inst, deltaErr: deltaErr}
	r.opts.Installer = di
	return r, di
}

var errSourceMismatch = &Failure{Code: omaha.ErrorCodeDeltaSourceMismatch, Err: errors.New("install: payload: source partition data hash mismatch: operation 3")}

// TestDeltaApplies: a delta offer is installed as the delta's own TUF target, from the
// running version, with the active partition as its source, and flips like a full one.
func TestDeltaApplies(t *testing.T) {
	r, di := deltaRig(t, nil)
	snap, err := r.engine(t).Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Status != StatusUpdatedNeedReboot || snap.NewSize != deltaSize {
		t.Errorf("snapshot %+v", snap)
	}
	if len(di.jobs) != 1 {
		t.Fatalf("%d install jobs, want 1", len(di.jobs))
	}
	j := di.jobs[0]
	if j.Target.SourceVersion != "4000.0.0" || j.Target.Length != deltaSize || j.Source != 3 || j.Partition != 4 {
		t.Errorf("job: target %+v, source %d, partition %d", j.Target, j.Source, j.Partition)
	}
	if got, want := r.srv.eventStrings(), []string{"13/1", "14/1", "3/1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if r.srv.fullChecks != 0 || r.inst.written != deltaSize {
		t.Errorf("full checks %d, written %d", r.srv.fullChecks, r.inst.written)
	}
}

// TestDeltaFallback: a delta whose source is not the active partition is reported as 1001,
// and in the same cycle the engine checks in with delta_okay="false" and installs the full
// payload, moving only along the status table (tableGuard). Other delta failures, a
// fallback check with nothing to offer, or a delta offered again end the cycle.
func TestDeltaFallback(t *testing.T) {
	t.Run("source mismatch", func(t *testing.T) {
		r, di := deltaRig(t, errSourceMismatch)
		snap, err := r.engine(t).Once(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if snap.Status != StatusUpdatedNeedReboot || snap.NewSize != payloadSize {
			t.Errorf("snapshot %+v", snap)
		}
		if got, want := r.srv.eventStrings(), []string{"13/1", "3/0 code=1001", "13/1", "14/1", "3/1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("events %v, want %v", got, want)
		}
		if r.srv.checks != 1 || r.srv.fullChecks != 1 {
			t.Errorf("%d checks and %d full checks, want one each", r.srv.checks, r.srv.fullChecks)
		}
		if len(di.jobs) != 2 || di.jobs[1].Offer.IsDeltaPayload || di.jobs[1].Target.SourceVersion != "" || r.inst.written != payloadSize {
			t.Errorf("jobs %+v, written %d", di.jobs, r.inst.written)
		}
		if b := r.boot.slot(4); b.Priority != 2 || b.Tries != 1 {
			t.Errorf("target after the fallback: %+v", b)
		}
	})
	for _, tc := range []struct {
		name     string
		deltaErr error
		full     *omaha.Offer
		code     omaha.ErrorCode
		fullChks int
	}{
		{"another failure", &Failure{Code: omaha.ErrorCodeDownloadOperationHashMismatch, Err: errors.New("data hash")}, testOffer(), omaha.ErrorCodeDownloadOperationHashMismatch, 0},
		{"nothing offered on the fallback", errSourceMismatch, nil, omaha.ErrorCodeDeltaSourceMismatch, 1},
		{"a delta offered again", errSourceMismatch, deltaOffer(), omaha.ErrorCodeOmahaResponseInvalid, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, di := deltaRig(t, tc.deltaErr)
			r.srv.full = tc.full
			snap, err := r.engine(t).Once(t.Context())
			if CodeOf(err) != tc.code || snap.Status != StatusIdle || snap.LastErrorCode != uint32(tc.code) {
				t.Errorf("Once: %v (code %d), snapshot %+v; want code %d", err, CodeOf(err), snap, tc.code)
			}
			if r.srv.fullChecks != tc.fullChks || len(di.jobs) != 1 {
				t.Errorf("%d full checks, %d jobs; want %d and 1", r.srv.fullChecks, len(di.jobs), tc.fullChks)
			}
			if b := r.boot.slot(4); b.Priority != 0 || b.Tries != 0 {
				t.Errorf("the target is bootable after a failed attempt: %+v", b)
			}
		})
	}
	t.Run("TUF pins the delta from another version", func(t *testing.T) {
		r, di := deltaRig(t, nil)
		r.trust.delta = deltaTarget("3999.0.0")
		_, err := r.engine(t).Once(t.Context())
		if CodeOf(err) != omaha.ErrorCodeDownloadPayloadVerificationError || len(di.jobs) != 0 || r.srv.fullChecks != 0 {
			t.Errorf("Once: %v (code %d), %d jobs, %d full checks", err, CodeOf(err), len(di.jobs), r.srv.fullChecks)
		}
	})
}
