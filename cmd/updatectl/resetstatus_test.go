package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/update-engine/engine"
)

// ResetStatus acts as engine.ResetStatus does on the snapshot: refused while busy, else a
// clean IDLE.
func (d *scriptedDaemon) ResetStatus(context.Context) error {
	s := d.Snapshot()
	if !s.Status.Settled() && s.Status != engine.StatusReportingErrorEvent {
		return engine.ErrBusy
	}
	d.publish(engine.Snapshot{Status: engine.StatusIdle, CurrentVersion: s.CurrentVersion, ActivePartition: s.ActivePartition})
	return nil
}

func TestResetStatusCommand(t *testing.T) {
	tests := []struct {
		name    string
		snap    engine.Snapshot
		want    string
		wantErr string
	}{
		{name: "after a failure", snap: engine.Snapshot{Status: engine.StatusIdle, LastError: "engine: TUF does not vouch for the offer", LastErrorCode: 12},
			want: "status reset to UPDATE_STATUS_IDLE\n"},
		{name: "abandons a waiting update", snap: engine.Snapshot{Status: engine.StatusUpdatedNeedReboot, NewVersion: "4001.0.0"},
			want: "status reset to UPDATE_STATUS_IDLE; the update to 4001.0.0 is abandoned\n"},
		{name: "busy", snap: engine.Snapshot{Status: engine.StatusDownloading, NewVersion: "4001.0.0"}, wantErr: "in progress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.snap.CurrentVersion, tt.snap.Seq = "4000.0.0", 1
			d := &scriptedDaemon{snap: tt.snap}
			sock := startDaemon(t, d)
			var out, errOut bytes.Buffer
			err := run(t.Context(), []string{"reset-status", "--socket", sock}, &out, &errOut)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if s := d.Snapshot(); s.Status != tt.snap.Status {
					t.Errorf("a refused reset changed the status to %s", s.Status)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v\n%s", err, errOut.String())
			}
			if out.String() != tt.want {
				t.Errorf("output %q, want %q", out.String(), tt.want)
			}
			if s := d.Snapshot(); s.Status != engine.StatusIdle || s.LastError != "" {
				t.Errorf("daemon after the reset: %+v", s)
			}
		})
	}
}
