package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/cmd/internal/usage/usagetest"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// TestActivityCommand runs syctl activity against a real server: the writes made with
// syctl are listed newest first with the token and the change, filters narrow the list,
// --limit 0 walks every page (more entries than one page holds), a viewer may read it,
// and bad flags are usage errors that reach no server.
func TestActivityCommand(t *testing.T) {
	e := newAdminEnv(t)
	e.must("app", "create", "--id", store.FlatcarAppID, "--name", "Flatcar")
	e.must("channel", "create", "--name", "stable")
	e.must("group", "create", "--name", "stable", "--track", "stable", "--channel", "stable")
	e.must("rollout", "pause", "--name", "stable")

	out := e.must("activity")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "group.pause") ||
		!strings.Contains(lines[1], `{"paused":false} → {"paused":true}`) || !strings.Contains(lines[1], "group/stable") {
		t.Fatalf("activity:\n%s", out)
	}
	var list []store.Activity
	if err := json.Unmarshal([]byte(e.must("activity", "--action", "group.pause", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Action != store.ActionGroupPause || list[0].ActorTokenID == 0 {
		t.Fatalf("--action group.pause: %+v", list)
	}
	viewerOut, err := e.syctlAs(e.viewerTok, "activity", "--since", "1h", "--subject", "group/stable", "--json")
	if err != nil {
		t.Fatalf("a viewer: %v", err)
	}
	if err := json.Unmarshal([]byte(viewerOut), &list); err != nil || len(list) != 2 {
		t.Fatalf("--since 1h --subject group/stable: %d entries (%v), want create and pause", len(list), err)
	}
	if err := json.Unmarshal([]byte(e.must("activity", "--until", "2000-01-01", "--json")), &list); err != nil || len(list) != 0 {
		t.Fatalf("--until 2000-01-01: %+v, %v", list, err)
	}

	// More entries than a page: --limit 0 walks them all, each once.
	ctx := context.Background()
	for range store.MaxActivityPage + 5 {
		if _, err := e.st.RecordActivity(ctx, store.Activity{Action: store.ActionTUFRootPublish, Subject: "tuf/root"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := json.Unmarshal([]byte(e.must("activity", "--limit", "0", "--action", "tuf.root.publish", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, a := range list {
		seen[a.ID] = true
	}
	if len(list) != store.MaxActivityPage+5 || len(seen) != len(list) {
		t.Errorf("--limit 0: %d entries (%d distinct), want %d", len(list), len(seen), store.MaxActivityPage+5)
	}
	if err := json.Unmarshal([]byte(e.must("activity", "--limit", "3", "--json")), &list); err != nil || len(list) != 3 {
		t.Errorf("--limit 3: %d entries, %v", len(list), err)
	}

	for _, bad := range [][]string{
		{"activity", "--action", "group.explode"},
		{"activity", "--since", "yesterday"},
		{"activity", "--until", "1h"},
		{"activity", "--limit", "-1"},
		{"activity", "extra"},
	} {
		if _, err := e.syctl(bad...); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

func TestActivityUsageErrorHint(t *testing.T) {
	usagetest.UsageError(t, "syctl", run, []string{"activity", "--action", "nope"},
		"syctl: --action \"nope\": want one of "+actionNames()+"\nrun 'syctl activity --help' for usage\n")
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"24h", now.Add(-24 * time.Hour)},
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"2026-12-01", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-12-01T10:00:00Z", time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)},
	} {
		got, err := parseSince(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"-1h", "0d", "soon"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}
