package state

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/internal/smallfile"
)

func TestRoundTrip(t *testing.T) {
	st := Store{Dir: filepath.Join(t.TempDir(), "var", "lib", "switchyard")}
	s, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if s.Schema != SchemaVersion || s.Pending != nil {
		t.Fatalf("fresh state = %+v", s)
	}
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	s.AlephVersion = "4000.0.0"
	s.LastCheck = now
	s.Pending = &Pending{Version: "4001.0.0", FromVersion: "4000.0.0", Size: 42, SHA256: "abc=", Target: 4, Source: 3, Phase: PhaseFlipped, Since: now}
	s.Resume = &Resume{SHA256: "abc=", Target: 4, NextOperation: 7, Offset: 1 << 20, Applier: json.RawMessage(`{"k":1}`)}
	s.AddHistory(now, "4001.0.0", "flipped")
	if err := st.Save(s); err != nil {
		t.Fatal(err)
	}
	got, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("Load = %+v\nwant %+v", got, s)
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(st.Dir)
	if len(ents) != 1 || ents[0].Name() != FileName {
		t.Errorf("state dir holds %v", ents)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		is      error
	}{
		{name: "garbage", content: "{not json"},
		{name: "newer schema", content: `{"schema": 99}`, is: ErrNewerSchema},
		{name: "one byte above the bound", content: `{}` + strings.Repeat(" ", maxStateSize-1), is: smallfile.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Store{Dir: dir}.Load()
			if err == nil {
				t.Fatal("Load accepted a bad file")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Load = %v, want %v", err, tt.is)
			}
		})
	}
}

func TestSaveFailureKeepsOld(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: a read-only directory does not stop writes")
	}
	dir := t.TempDir()
	st := Store{Dir: dir}
	if err := st.Save(State{AlephVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	if err := st.Save(State{AlephVersion: "2"}); err == nil {
		t.Fatal("Save into a read-only directory succeeded")
	}
	s, err := st.Load()
	if err != nil || s.AlephVersion != "1" {
		t.Errorf("after a failed save: %+v, %v", s, err)
	}
}

func TestHistoryBound(t *testing.T) {
	var s State
	for i := 0; i < 3*maxHistory; i++ {
		s.AddHistory(time.Unix(int64(i), 0), "v", "e")
	}
	if len(s.History) != maxHistory || s.History[maxHistory-1].Time.Unix() != 3*maxHistory-1 {
		t.Errorf("history: %d entries, last %v", len(s.History), s.History[len(s.History)-1])
	}
}

func TestAleph(t *testing.T) {
	if got := (State{}).Aleph("4081.2.0"); got != "4081.2.0" {
		t.Errorf("Aleph before one is recorded = %q, want the running version", got)
	}
	if got := (State{AlephVersion: "3033.2.4"}).Aleph("4081.2.0"); got != "3033.2.4" {
		t.Errorf("Aleph = %q, want the recorded 3033.2.4", got)
	}
}

// TestLoadAtBound: a state file of exactly maxStateSize bytes is read.
func TestLoadAtBound(t *testing.T) {
	dir := t.TempDir()
	doc := `{"aleph_version":"1"}`
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(doc+strings.Repeat(" ", maxStateSize-len(doc))), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Store{Dir: dir}.Load()
	if err != nil || s.AlephVersion != "1" {
		t.Fatalf("Load = %+v, %v", s, err)
	}
}
