package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"encoding/pem"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

// newWrappedEnv is newAdminEnv with wrap around the server's handler (to play a second
// operator between syctl's requests).
func newWrappedEnv(t *testing.T, wrap func(st store.Store, next http.Handler) http.Handler) *adminEnv {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := server.New(ctx, server.Config{DataDir: dir}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	srv := httptest.NewTLSServer(wrap(st, s))
	t.Cleanup(srv.Close)
	e := &adminEnv{t: t, url: srv.URL, st: st, srv: srv, cacert: filepath.Join(dir, "ca.pem")}
	if err := os.WriteFile(e.cacert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, hash, _ := auth.NewToken()
	if _, err := st.CreateToken(ctx, store.Token{Hash: hash, Role: store.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	e.adminTok = tok
	tok, hash, _ = auth.NewToken()
	if _, err := st.CreateToken(ctx, store.Token{Hash: hash, Role: store.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	e.viewerTok = tok
	return e
}

// rolloutCatalog publishes two releases, channels beta (4081.3.0) and stable (4081.2.0),
// and groups prod (stable) and canary (beta).
func (e *adminEnv) rolloutCatalog() {
	e.t.Helper()
	e.must("app", "create", "--id", omaha.FlatcarAppID, "--name", "Flatcar")
	for _, v := range []string{"4081.2.0", "4081.3.0"} {
		e.must("release", "publish", "--version", v, "--url", "https://mirror.example/"+v+"/flatcar_production_update.gz",
			"--size", "1000", "--sha256", strings.Repeat("ab", 32))
	}
	e.must("channel", "create", "--name", "stable")
	e.must("channel", "set", "--name", "stable", "--version", "4081.2.0")
	e.must("channel", "create", "--name", "beta")
	e.must("channel", "set", "--name", "beta", "--version", "4081.3.0")
	e.must("group", "create", "--name", "prod", "--track", "stable", "--channel", "stable")
	e.must("group", "create", "--name", "canary", "--track", "beta", "--channel", "beta")
}

// showPolicy reads the group's policy through `group policy show --json`.
func (e *adminEnv) showPolicy(group string) adminapi.PolicyInput {
	e.t.Helper()
	var p adminapi.PolicyInput
	if err := json.Unmarshal([]byte(e.must("group", "policy", "show", "--name", group, "--json")), &p); err != nil {
		e.t.Fatal(err)
	}
	if p.Version == nil {
		e.t.Fatal("policy show --json has no version")
	}
	return p
}

func intp(v int) *int { return &v }

// oneLine checks that err is a single line naming want: what main prints after "syctl:".
func oneLine(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one naming %q", want)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, want) {
		t.Errorf("error %q: want one line containing %q", msg, want)
	}
}

func TestGroupPolicyCommands(t *testing.T) {
	e := newAdminEnv(t)
	e.rolloutCatalog()

	out := e.must("group", "policy", "show", "--name", "prod")
	for _, want := range []string{"prod (version 1)", "percent         100", "halt            never", "pin             none (follows the channel)"} {
		if !strings.Contains(out, want) {
			t.Errorf("policy show lacks %q:\n%s", want, out)
		}
	}

	// Every flag that sets something.
	out = e.must("group", "policy", "set", "--name", "prod", "--percent", "10", "--max-per-period", "20", "--period", "1h",
		"--max-in-flight", "5", "--install-timeout", "2h", "--window", "Mon-Fri 09:00 8h Europe/Berlin", "--window", "Sat 10:00 2h UTC",
		"--halt-failures", "3", "--halt-of", "20", "--floor", "4081.1.0", "--block", "4081.3.0", "--pin", "4081.2.0")
	for _, want := range []string{"percent         10", "20 per 1h0m0s", "max in flight   5", "timeout         2h0m0s",
		"Mon-Fri 09:00 8h Europe/Berlin; Sat 10:00 2h UTC", "when 3 of the last 20 attempts fail", "floors          4081.1.0",
		"blocked         4081.3.0", "pin             4081.2.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("policy set output lacks %q:\n%s", want, out)
		}
	}
	full := policy.Policy{Percent: intp(10), MaxPerPeriod: 20, Period: policy.Duration(time.Hour), MaxInFlight: 5,
		Timeout: policy.Duration(2 * time.Hour), Windows: []string{"Mon-Fri 09:00 8h Europe/Berlin", "Sat 10:00 2h UTC"},
		HaltFailures: 3, HaltOf: 20, Floors: []string{"4081.1.0"}, Blocked: []string{"4081.3.0"}, Pin: "4081.2.0"}
	got := e.showPolicy("prod")
	if !reflect.DeepEqual(got.Policy, full) || *got.Version != 2 {
		t.Fatalf("policy after set: %+v (version %d), want %+v", got.Policy, *got.Version, full)
	}

	// Each edit changes only what it names; clears and days.
	for _, tt := range []struct {
		args []string
		edit func(p *policy.Policy)
	}{
		{[]string{"--percent", "100"}, func(p *policy.Policy) { p.Percent = nil }},
		{[]string{"--max-per-period", "0"}, func(p *policy.Policy) { p.MaxPerPeriod, p.Period = 0, 0 }},
		{[]string{"--max-per-period", "7", "--period", "1d"}, func(p *policy.Policy) { p.MaxPerPeriod, p.Period = 7, policy.Duration(24*time.Hour) }},
		{[]string{"--install-timeout", "0"}, func(p *policy.Policy) { p.Timeout = 0 }},
		{[]string{"--install-timeout", "7d"}, func(p *policy.Policy) { p.Timeout = policy.Duration(7 * 24 * time.Hour) }},
		{[]string{"--max-in-flight", "0"}, func(p *policy.Policy) { p.MaxInFlight = 0 }},
		{[]string{"--halt-failures", "2"}, func(p *policy.Policy) { p.HaltFailures = 2 }},
		{[]string{"--halt-failures", "0"}, func(p *policy.Policy) { p.HaltFailures, p.HaltOf = 0, 0 }},
		{[]string{"--clear-windows", "--window", "Sun 02:00 4h UTC"}, func(p *policy.Policy) { p.Windows = []string{"Sun 02:00 4h UTC"} }},
		{[]string{"--clear-windows"}, func(p *policy.Policy) { p.Windows = nil }},
		{[]string{"--floor", "4081.0.0"}, func(p *policy.Policy) { p.Floors = append(p.Floors, "4081.0.0") }},
		{[]string{"--clear-floors"}, func(p *policy.Policy) { p.Floors = nil }},
		{[]string{"--unblock", "4081.3.0"}, func(p *policy.Policy) { p.Blocked = nil }},
		{[]string{"--unpin"}, func(p *policy.Policy) { p.Pin = "" }},
		// --clear-caps goes first, whatever the order on the command line.
		{[]string{"--percent", "50", "--max-in-flight", "3", "--halt-failures", "1", "--clear-caps", "--install-timeout", "1h"}, func(p *policy.Policy) {
			p.MaxPerPeriod, p.Period = 0, 0
			p.Percent, p.MaxInFlight, p.HaltFailures, p.HaltOf, p.Timeout = intp(50), 3, 1, 1, policy.Duration(time.Hour)
		}},
		{[]string{"--clear-caps"}, func(p *policy.Policy) {
			p.Percent, p.MaxPerPeriod, p.Period, p.MaxInFlight, p.Timeout, p.HaltFailures, p.HaltOf = nil, 0, 0, 0, 0, 0, 0
		}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			before := e.showPolicy("prod")
			want := before.Policy
			tt.edit(&want)
			e.must(append([]string{"group", "policy", "set", "--name", "prod"}, tt.args...)...)
			after := e.showPolicy("prod")
			norm := func(p policy.Policy) string { b, _ := json.Marshal(p); return string(b) }
			if norm(after.Policy) != norm(want) {
				t.Errorf("policy\n got  %s\n want %s", norm(after.Policy), norm(want))
			}
			if *after.Version != *before.Version+1 {
				t.Errorf("version %d after %d", *after.Version, *before.Version)
			}
		})
	}
	if p := e.showPolicy("prod"); !p.Policy.Counted() && !reflect.DeepEqual(p.Policy, policy.Policy{}) {
		t.Errorf("after clearing everything: %+v", p.Policy)
	}

	// Bad values: one clear line, an error (main exits non-zero), nothing written.
	e.must("group", "policy", "set", "--name", "prod", "--percent", "30")
	kept := e.showPolicy("prod")
	for _, tt := range []struct {
		args  []string
		want  string
		usage bool
	}{
		{[]string{"--percent", "101"}, "percent", false},
		{[]string{"--percent", "-1"}, "percent", false},
		{[]string{"--percent", "ten"}, "-percent", true},
		{[]string{"--period", "1x"}, "-period", true},
		{[]string{"--install-timeout", "1000000d"}, "days", true},
		{[]string{"--max-per-period", "5"}, "period", false},
		{[]string{"--window", "Funday 09:00 8h UTC"}, "Funday", false},
		{[]string{"--window", "Mon 09:00 8h Mars/Olympus"}, "Mars/Olympus", false},
		{[]string{"--halt-failures", "5", "--halt-of", "2"}, "halt when 5 of the last 2", false},
		{[]string{"--floor", "not-a-version"}, "not-a-version", false},
		{[]string{"--pin", "4081.2.0", "--unpin"}, "--pin and --unpin", true},
		{[]string{"stray"}, "unexpected argument", true},
	} {
		t.Run("bad "+strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := e.syctl(append([]string{"group", "policy", "set", "--name", "prod"}, tt.args...)...)
			oneLine(t, err, tt.want)
			if errors.Is(err, errUsage) != tt.usage {
				t.Errorf("usage error %v, want %v: %v", errors.Is(err, errUsage), tt.usage, err)
			}
			if p := e.showPolicy("prod"); !reflect.DeepEqual(p, kept) {
				t.Errorf("a refused edit changed the policy: %+v", p.Policy)
			}
		})
	}
	_, err := e.syctl("group", "policy", "set", "--percent", "10")
	oneLine(t, err, "--name")
	_, err = e.syctl("group", "policy", "show", "--name", "nobody")
	oneLine(t, err, "404")
	_, err = e.syctl("group", "policy", "set", "--name", "nobody", "--percent", "10")
	oneLine(t, err, "404")
	_, err = e.syctl("group", "policy", "frob", "--name", "prod")
	if !errors.Is(err, errUsage) {
		t.Errorf("group policy frob: %v", err)
	}
	_, err = e.syctlAs(e.viewerTok, "group", "policy", "set", "--name", "prod", "--percent", "10")
	oneLine(t, err, "403")
	if out, err := e.syctlAs(e.viewerTok, "group", "policy", "show", "--name", "prod"); err != nil || !strings.Contains(out, "percent         30") {
		t.Errorf("viewer policy show: %v\n%s", err, out)
	}
}

// TestGroupPolicyConcurrentEdit plays a second operator who writes the group between
// syctl's read and its write: syctl retries on the new version and keeps the other edit;
// when the group keeps changing it gives up with the conflict, writing nothing of its own.
func TestGroupPolicyConcurrentEdit(t *testing.T) {
	var interfere atomic.Int32 // how many of the next policy PUTs are preceded by another edit
	var puts atomic.Int32
	e := newWrappedEnv(t, func(st store.Store, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/policy") {
				puts.Add(1)
				if interfere.Add(-1) >= 0 {
					_, err := st.UpdateGroup(r.Context(), store.FlatcarAppID, "prod", func(g *store.Group) error {
						g.Policy.MaxInFlight++
						return nil
					})
					if err != nil {
						http.Error(w, err.Error(), http.StatusInternalServerError)
						return
					}
				}
			}
			next.ServeHTTP(w, r)
		})
	})
	e.rolloutCatalog()

	interfere.Store(1)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"group", "policy", "set", "--name", "prod", "--percent", "30",
		"--server", e.url, "--token", e.adminTok, "--cacert", e.cacert}, &out, &errb)
	if err != nil {
		t.Fatalf("set with one concurrent edit: %v\n%s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "changed while editing") || !strings.Contains(errb.String(), "409") || puts.Load() != 2 {
		t.Errorf("want one 409 and a retry (%d PUTs); stderr:\n%s", puts.Load(), errb.String())
	}
	p := e.showPolicy("prod")
	if p.Policy.PercentOrAll() != 30 || p.Policy.MaxInFlight != 1 {
		t.Errorf("both edits must be kept: %+v", p.Policy)
	}

	interfere.Store(1 << 20)
	puts.Store(0)
	_, err = e.syctl("group", "policy", "set", "--name", "prod", "--percent", "60")
	oneLine(t, err, "keeps changing")
	oneLine(t, err, "409")
	if puts.Load() != policyRetries {
		t.Errorf("%d PUTs, want %d", puts.Load(), policyRetries)
	}
	interfere.Store(0)
	if p := e.showPolicy("prod"); p.Policy.PercentOrAll() != 30 {
		t.Errorf("the refused edit was written: %+v", p.Policy)
	}
}

func TestRolloutCommands(t *testing.T) {
	e := newAdminEnv(t)
	e.rolloutCatalog()
	e.must("group", "policy", "set", "--name", "canary", "--halt-failures", "1", "--halt-of", "1")

	// A host on 4081.2.0 is offered 4081.3.0, downloads it, and rolls back: the group halts.
	ctx := context.Background()
	h := omaha.Host{Version: "4081.2.0", Track: "beta", Board: "amd64-usr", Machine: "x86_64", MachineID: "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0",
		BootID: "{0c288430-2504-4db4-913a-8c3de52afd07}", OEM: "qemu", AlephVersion: "3602.2.3"}
	resp, err := omaha.Send(ctx, e.srv.Client(), e.url+"/v1/update/", omaha.NewUpdateCheckRequest(h, false), omaha.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if o, err := resp.Offer(omaha.FlatcarAppID); err != nil || o == nil || o.Version != "4081.3.0" {
		t.Fatalf("offer: %+v, %v", o, err)
	}
	out := e.must("rollout", "status", "--name", "canary")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "GROUP") || !strings.Contains(lines[0], "ROLLED BACK") ||
		!strings.Contains(lines[1], "canary") || !strings.Contains(lines[1], "4081.3.0") || !strings.HasSuffix(lines[1], "running") {
		t.Errorf("rollout status before the failure:\n%s", out)
	}
	for _, ev := range []*omaha.Event{omaha.EventDownloadStarted(), omaha.EventRollback(0)} {
		if _, err := omaha.Send(ctx, e.srv.Client(), e.url+"/v1/update/", omaha.NewEventRequest(h, ev), omaha.Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	out = e.must("rollout", "status", "--name", "canary")
	if !strings.Contains(out, "halted at ") || !strings.Contains(out, "1 of the last 1") {
		t.Errorf("rollout status after a rollback:\n%s", out)
	}
	var st store.RolloutStatus
	if err := json.Unmarshal([]byte(e.must("rollout", "status", "--name", "canary", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Group != "canary" || st.Version != "4081.3.0" || st.Granted != 1 || st.RolledBack != 1 || st.HaltReason == "" || st.HaltedAt.IsZero() || !st.Counted {
		t.Errorf("rollout status --json: %+v", st)
	}
	if err := json.Unmarshal([]byte(e.must("rollout", "status", "--name", "canary", "--version", "4081.2.0", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Version != "4081.2.0" || st.Granted != 0 {
		t.Errorf("rollout status --version 4081.2.0: %+v", st)
	}
	// The halt holds the group: the host's next check gets nothing.
	h.MachineID = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"
	resp, err = omaha.Send(ctx, e.srv.Client(), e.url+"/v1/update/", omaha.NewUpdateCheckRequest(h, false), omaha.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := resp.Offer(omaha.FlatcarAppID); o != nil {
		t.Errorf("a halted group offered %s", o.Version)
	}

	if out := e.must("rollout", "resume", "--name", "canary"); out != "group canary: rollout running\n" {
		t.Errorf("rollout resume: %q", out)
	}
	if out := e.must("rollout", "status", "--name", "canary"); !strings.HasSuffix(strings.TrimSpace(out), "running") {
		t.Errorf("status after resume:\n%s", out)
	}
	if out := e.must("rollout", "pause", "--name", "canary"); out != "group canary: rollout paused\n" {
		t.Errorf("rollout pause: %q", out)
	}
	if out := e.must("rollout", "status", "--name", "canary"); !strings.HasSuffix(strings.TrimSpace(out), "paused") {
		t.Errorf("status after pause:\n%s", out)
	}
	var g store.Group
	if err := json.Unmarshal([]byte(e.must("rollout", "resume", "--name", "canary", "--json")), &g); err != nil {
		t.Fatal(err)
	}
	if g.Name != "canary" || g.Paused || g.Halted() {
		t.Errorf("rollout resume --json: %+v", g)
	}
	if err := json.Unmarshal([]byte(e.must("rollout", "pause", "--name", "prod", "--json")), &g); err != nil {
		t.Fatal(err)
	}
	if g.Name != "prod" || !g.Paused {
		t.Errorf("rollout pause --json: %+v", g)
	}

	for _, tt := range []struct {
		args  []string
		want  string
		usage bool
	}{
		{[]string{"rollout", "frob", "--name", "prod"}, "rollout frob", true},
		{[]string{"rollout", "status"}, "--name", false},
		{[]string{"rollout", "status", "--name", "prod", "extra"}, "unexpected argument", true},
		{[]string{"rollout", "status", "--name", "nobody"}, "404", false},
		{[]string{"rollout", "pause", "--name", "nobody"}, "404", false},
		{[]string{"rollout", "status", "--name", "prod", "--version", "not a version"}, "400", false},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := e.syctl(tt.args...)
			oneLine(t, err, tt.want)
			if tt.usage && !errors.Is(err, errUsage) {
				t.Errorf("want a usage error: %v", err)
			}
		})
	}
	err = run(ctx, []string{"rollout"}, &bytes.Buffer{}, &bytes.Buffer{})
	oneLine(t, err, "status, pause or resume")
	_, err = e.syctlAs(e.viewerTok, "rollout", "resume", "--name", "prod")
	oneLine(t, err, "403")
	if out, err := e.syctlAs(e.viewerTok, "rollout", "status", "--name", "prod"); err != nil || !strings.Contains(out, "paused") {
		t.Errorf("viewer rollout status: %v\n%s", err, out)
	}
}

// TestRolloutStatusNoRelease: when the group's channel offers no release, rollout status
// says so in one line instead of printing a row with an empty version, and --json carries
// no_release with zero counts.
func TestRolloutStatusNoRelease(t *testing.T) {
	e := newAdminEnv(t)
	e.rolloutCatalog()
	e.must("group", "policy", "set", "--name", "canary", "--max-in-flight", "5")
	// One grant on 4081.3.0 in canary, then canary moves to a channel with no release.
	h := omaha.Host{Version: "4081.2.0", Track: "beta", Board: "amd64-usr", Machine: "x86_64", MachineID: "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0",
		BootID: "{0c288430-2504-4db4-913a-8c3de52afd07}", OEM: "qemu", AlephVersion: "3602.2.3"}
	resp, err := omaha.Send(context.Background(), e.srv.Client(), e.url+"/v1/update/", omaha.NewUpdateCheckRequest(h, false), omaha.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if o, err := resp.Offer(omaha.FlatcarAppID); err != nil || o == nil {
		t.Fatalf("offer: %+v, %v", o, err)
	}
	e.must("channel", "create", "--name", "empty")
	e.must("group", "update", "--name", "canary", "--channel", "empty")
	e.must("rollout", "pause", "--name", "canary")

	out := e.must("rollout", "status", "--name", "canary")
	want := `group canary: no release to roll out (channel "empty" offers no release for board amd64-usr); rollout paused` + "\n"
	if out != want {
		t.Errorf("rollout status:\n%s\nwant:\n%s", out, want)
	}
	var st adminapi.RolloutReport
	if err := json.Unmarshal([]byte(e.must("rollout", "status", "--name", "canary", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if !st.NoRelease || st.Reason == "" || st.Version != "" || st.Granted != 0 || !st.Paused {
		t.Errorf("rollout status --json: %+v", st)
	}
	// The grant is still counted against its version.
	out = e.must("rollout", "status", "--name", "canary", "--version", "4081.3.0")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "4081.3.0") {
		t.Errorf("rollout status --version 4081.3.0:\n%s", out)
	}
}

func TestChannelPromote(t *testing.T) {
	e := newAdminEnv(t)
	e.rolloutCatalog()
	if out := e.must("channel", "promote", "--from", "beta", "--to", "stable"); out != "channel stable now offers 4081.3.0 on amd64-usr\n" {
		t.Errorf("channel promote: %q", out)
	}
	ch, err := e.st.GetChannel(context.Background(), store.FlatcarAppID, "stable")
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := ch.Releases["amd64-usr"]; !ok || r.Version != "4081.3.0" {
		t.Errorf("stable after promote: %+v", ch.Releases)
	}
	e.must("channel", "create", "--name", "empty")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"channel", "promote", "--from", "beta"}, "--to"},
		{[]string{"channel", "promote", "--to", "stable"}, "--from"},
		{[]string{"channel", "promote", "--from", "beta", "--to", "stable", "extra"}, "unexpected argument"},
		{[]string{"channel", "promote", "--from", "nobody", "--to", "stable"}, "nobody"},
		{[]string{"channel", "promote", "--from", "beta", "--to", "nobody"}, "nobody"},
		{[]string{"channel", "promote", "--from", "empty", "--to", "stable"}, "empty"},
	} {
		t.Run(strings.Join(tt.args[2:], " "), func(t *testing.T) {
			_, err := e.syctl(tt.args...)
			oneLine(t, err, tt.want)
		})
	}
	if ch, _ := e.st.GetChannel(context.Background(), store.FlatcarAppID, "stable"); ch.Releases["amd64-usr"].Version != "4081.3.0" {
		t.Errorf("a refused promote changed stable: %+v", ch.Releases)
	}
	_, err = e.syctlAs(e.viewerTok, "channel", "promote", "--from", "beta", "--to", "stable")
	oneLine(t, err, "403")
}
