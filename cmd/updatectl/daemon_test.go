package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/update-engine/control"
	"github.com/switchyard-os/switchyard/update-engine/engine"
)

// scriptedDaemon walks through a list of snapshots when a check is asked for. It publishes
// the next step only when a watcher has seen the current one (it waits for a sequence number
// past it), so every step reaches the watcher however slowly the test runs: a watcher of the
// real engine may miss a step that is replaced before it asks again, and a test that paced
// the steps by time failed on a loaded machine when one was.
type scriptedDaemon struct {
	mu      sync.Mutex
	snap    engine.Snapshot
	changed chan struct{}
	script  []engine.Snapshot
	pending []engine.Snapshot // the steps of the requested check not yet published
	marked  int
	rolled  int
}

// publish makes s the current snapshot at once (a change the daemon makes on its own).
func (d *scriptedDaemon) publish(s engine.Snapshot) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.publishLocked(s)
}

// publishLocked makes s the current snapshot; d.mu is held.
func (d *scriptedDaemon) publishLocked(s engine.Snapshot) {
	s.Seq = d.snap.Seq + 1
	d.snap = s
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *scriptedDaemon) Snapshot() engine.Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.snap
}

func (d *scriptedDaemon) Wait(ctx context.Context, after uint64) (engine.Snapshot, error) {
	for {
		d.mu.Lock()
		if d.snap.Seq <= after && len(d.pending) > 0 {
			// The watcher has seen the current step: play the next.
			d.publishLocked(d.pending[0])
			d.pending = d.pending[1:]
		}
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

func (d *scriptedDaemon) CheckNow() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.snap.Status.Settled() || len(d.pending) > 0 {
		return engine.ErrBusy
	}
	d.pending = append([]engine.Snapshot(nil), d.script...)
	return nil
}

func (d *scriptedDaemon) MarkGood(context.Context) error { d.marked++; return nil }
func (d *scriptedDaemon) Rollback(context.Context) error {
	d.rolled++
	return errors.New("engine: rollback: slots: no other known-good partition")
}

func startDaemon(t *testing.T, d *scriptedDaemon) string {
	t.Helper()
	d.changed = make(chan struct{})
	sock := filepath.Join(t.TempDir(), "ue.sock")
	l, err := control.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { control.Serve(ctx, l, d, nil); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return sock
}

func TestDaemonCommands(t *testing.T) {
	checked := time.Unix(1767225600, 0)
	idle := engine.Snapshot{Status: engine.StatusIdle, CurrentVersion: "4000.0.0", ActivePartition: "USR-A", TargetPartition: "USR-B"}
	dl := func(p float64) engine.Snapshot {
		return engine.Snapshot{Status: engine.StatusDownloading, CurrentVersion: "4000.0.0", NewVersion: "4001.0.0",
			NewSize: 1 << 30, Progress: p, BytesDone: int64(p * (1 << 30)), BytesTotal: 1 << 30, LastChecked: checked}
	}
	done := engine.Snapshot{Status: engine.StatusUpdatedNeedReboot, CurrentVersion: "4000.0.0", NewVersion: "4001.0.0",
		NewSize: 1 << 30, Progress: 1, LastChecked: checked}
	failed := engine.Snapshot{Status: engine.StatusIdle, CurrentVersion: "4000.0.0", LastChecked: checked,
		LastError: "engine: Omaha and TUF disagree about the payload", LastErrorCode: 10}

	tests := []struct {
		name    string
		args    []string
		script  []engine.Snapshot
		want    []string // substrings of stdout, in order
		wantErr string
	}{
		{name: "status", args: []string{"status"}, want: []string{
			"LAST_CHECKED_TIME=0\n", "PROGRESS=0.000000\n", "CURRENT_OP=UPDATE_STATUS_IDLE\n", "NEW_VERSION=0.0.0\n", "NEW_SIZE=0\n", "CURRENT_VERSION=4000.0.0"}},
		{name: "status json", args: []string{"status", "--json"}, want: []string{`"status": "UPDATE_STATUS_IDLE"`, `"current_version": "4000.0.0"`}},
		{name: "check", args: []string{"check"}, want: []string{"check requested"}},
		{name: "check and wait for the update", args: []string{"check", "--wait"},
			script: []engine.Snapshot{{Status: engine.StatusCheckingForUpdate}, {Status: engine.StatusUpdateAvailable}, dl(0), dl(0.5), dl(1), {Status: engine.StatusFinalizing}, done},
			want:   []string{"UPDATE_STATUS_CHECKING_FOR_UPDATE", "UPDATE_STATUS_DOWNLOADING", "[###############...............]  50.0% 512.0MiB/1.0GiB", "UPDATE_STATUS_UPDATED_NEED_REBOOT"}},
		{name: "check and wait for a refusal", args: []string{"check", "--wait"},
			script:  []engine.Snapshot{{Status: engine.StatusCheckingForUpdate}, {Status: engine.StatusUpdateAvailable}, {Status: engine.StatusReportingErrorEvent}, failed},
			want:    []string{"UPDATE_STATUS_REPORTING_ERROR_EVENT"},
			wantErr: "error code 10"},
		{name: "check and wait for noupdate", args: []string{"check", "--wait"},
			script: []engine.Snapshot{{Status: engine.StatusCheckingForUpdate}, {Status: engine.StatusIdle, LastChecked: checked}},
			want:   []string{"UPDATE_STATUS_CHECKING_FOR_UPDATE", "UPDATE_STATUS_IDLE"}},
		{name: "watch an idle daemon", args: []string{"watch"}, want: []string{"UPDATE_STATUS_IDLE"}},
		{name: "mark-good", args: []string{"mark-good"}, want: []string{"marked USR-A good"}},
		{name: "rollback refused", args: []string{"rollback"}, wantErr: "no other known-good partition"},
		{name: "stray argument", args: []string{"status", "now"}, wantErr: "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &scriptedDaemon{snap: idle, script: tt.script}
			d.snap.Seq = 1
			sock := startDaemon(t, d)
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			args := append([]string{tt.args[0], "--socket", sock}, tt.args[1:]...)
			err := run(ctx, args, &out, &errOut)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("err = %v\n%s", err, errOut.String())
			}
			rest := out.String()
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", w, out.String())
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestStatusJSONDecodes(t *testing.T) {
	d := &scriptedDaemon{}
	sock := startDaemon(t, d)
	d.publish(engine.Snapshot{Status: engine.StatusUpdatedNeedReboot, NewVersion: "4001.0.0", NewSize: 42})
	var out bytes.Buffer
	if err := run(t.Context(), []string{"status", "--socket", sock, "--json"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	var s engine.Snapshot
	if err := json.Unmarshal(out.Bytes(), &s); err != nil || s.NewSize != 42 || s.Status != engine.StatusUpdatedNeedReboot {
		t.Errorf("decoded %+v, %v", s, err)
	}
}

func TestNoDaemon(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"status", "--socket", filepath.Join(t.TempDir(), "x.sock")}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "is update-engine running") {
		t.Errorf("err = %v", err)
	}
}
