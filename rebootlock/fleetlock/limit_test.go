package fleetlock

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchyard-os/switchyard/rebootlock"
)

// manualClock is a clock the test advances by hand.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// limitFixture is a handler with cfg on a fresh etcd, called in-process so that each
// request can come from a chosen address.
type limitFixture struct {
	h     *Handler
	cli   *clientv3.Client
	opts  rebootlock.Options
	clock *manualClock
}

func newLimitFixture(t *testing.T, cfg Config) *limitFixture {
	t.Helper()
	f := newFixture(t)
	clock := &manualClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg.Options = rebootlock.Options{Prefix: "/fl", Logger: slog.New(slog.DiscardHandler), Now: clock.Now}
	return &limitFixture{h: New(f.cli, cfg), cli: f.cli, opts: cfg.Options, clock: clock}
}

// post sends a request from remote and returns the status and the error kind.
func (f *limitFixture) post(t *testing.T, remote, path, id, group string) (int, string) {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, path, strings.NewReader(zincatiBody(id, group)))
	req.RemoteAddr = remote
	req.Header.Set(Header, "true")
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code == http.StatusOK {
		return rec.Code, ""
	}
	return rec.Code, decodeError(rec.Code, rec.Body).Kind
}

func (f *limitFixture) setMax(t *testing.T, group string, n int) {
	t.Helper()
	s, err := rebootlock.New(f.cli, group, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetMax(t.Context(), n); err != nil {
		t.Fatal(err)
	}
}

// TestNewGroupsPerSource: one address inventing groups is stopped after its quota, while
// configured groups, groups in use and other addresses are served as before.
func TestNewGroupsPerSource(t *testing.T) {
	f := newLimitFixture(t, Config{NewGroupsPerSource: 3})
	f.setMax(t, "real", 2)
	const flooder = "192.0.2.7:40000"
	steps := []struct {
		name, remote, path, id, group string
		status                        int
		kind                          string
	}{
		{"new group 1", flooder, PreReboot, "fake", "fake-1", 200, ""},
		{"new group 2, another port", "192.0.2.7:40001", PreReboot, "fake", "fake-2", 200, ""},
		{"new group 3", flooder, PreReboot, "fake", "fake-3", 200, ""},
		{"new group 4: over the quota", flooder, PreReboot, "fake", "fake-4", 429, "too_many_new_groups"},
		{"the refused group took no slot", "198.51.100.1:1", PreReboot, "other", "fake-4", 200, ""},
		{"a configured group is never limited", flooder, PreReboot, "fake", "real", 200, ""},
		{"a real host in the configured group", "198.51.100.2:1", PreReboot, "host", "real", 200, ""},
		{"a group in use is not new: full", flooder, PreReboot, "fake-b", "fake-1", 409, "failed_lock_semaphore_full"},
		{"a holder's recursive lock", flooder, PreReboot, "fake", "fake-1", 200, ""},
		{"steady-state is never limited", flooder, SteadyState, "fake", "fake-1", 200, ""},
		{"now empty, so new again", flooder, PreReboot, "fake", "fake-1", 429, "too_many_new_groups"},
		{"IPv6: a /64 is one source", "[2001:db8::1]:1", PreReboot, "v6", "six-1", 200, ""},
		{"IPv6 2", "[2001:db8::2]:1", PreReboot, "v6", "six-2", 200, ""},
		{"IPv6 3", "[2001:db8::3]:1", PreReboot, "v6", "six-3", 200, ""},
		{"IPv6 4, same /64", "[2001:db8::4]:1", PreReboot, "v6", "six-4", 429, "too_many_new_groups"},
		{"IPv6, another /64", "[2001:db8:0:1::4]:1", PreReboot, "v6", "six-4", 200, ""},
	}
	for _, s := range steps {
		if status, kind := f.post(t, s.remote, s.path, s.id, s.group); status != s.status || kind != s.kind {
			t.Fatalf("%s: %d %s, want %d %s", s.name, status, kind, s.status, s.kind)
		}
	}
	// The quota refills over an hour: 20 minutes give one more group.
	f.clock.advance(20 * time.Minute)
	if status, kind := f.post(t, flooder, PreReboot, "fake", "fake-5"); status != 200 {
		t.Fatalf("after 20 minutes: %d %s, want 200", status, kind)
	}
	if status, kind := f.post(t, flooder, PreReboot, "fake", "fake-6"); status != 429 {
		t.Fatalf("second group after 20 minutes: %d %s, want 429", status, kind)
	}
}

// TestConfiguredGroupsOnly: only groups with a config key take new holders; releasing is
// always possible.
func TestConfiguredGroupsOnly(t *testing.T) {
	f := newLimitFixture(t, Config{ConfiguredGroupsOnly: true})
	const remote = "192.0.2.1:1"
	if status, kind := f.post(t, remote, PreReboot, "h", "stranger"); status != 400 || kind != "unknown_group" {
		t.Fatalf("unconfigured group: %d %s, want 400 unknown_group", status, kind)
	}
	if status, kind := f.post(t, remote, SteadyState, "h", "stranger"); status != 200 {
		t.Fatalf("steady-state in an unconfigured group: %d %s, want 200", status, kind)
	}
	resp, err := f.cli.Get(t.Context(), "/fl/groups/stranger/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Fatalf("keys of the refused group: %v %v", resp, err)
	}
	f.setMax(t, "stranger", 1)
	if status, kind := f.post(t, remote, PreReboot, "h", "stranger"); status != 200 {
		t.Fatalf("configured group: %d %s, want 200", status, kind)
	}
}

// TestHolderTTL: a holder of an unconfigured group is on a lease of HolderTTL, so a host
// (or a stranger) that never sends steady-state does not keep the slot or its keys for
// ever; a holder of a configured group has no lease.
func TestHolderTTL(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		configured bool
		want       time.Duration // 0: no lease
	}{
		{name: "default", want: DefaultHolderTTL},
		{name: "configured TTL", cfg: Config{HolderTTL: 90 * time.Minute}, want: 90 * time.Minute},
		{name: "configured group", cfg: Config{HolderTTL: 90 * time.Minute}, configured: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLimitFixture(t, tt.cfg)
			group := fmt.Sprintf("g%d", i)
			if tt.configured {
				f.setMax(t, group, 1)
			}
			if status, kind := f.post(t, "192.0.2.1:1", PreReboot, "h", group); status != 200 {
				t.Fatalf("lock: %d %s", status, kind)
			}
			resp, err := f.cli.Get(t.Context(), "/fl/groups/"+group+"/holders/h")
			if err != nil || len(resp.Kvs) != 1 {
				t.Fatalf("holder key: %v %v", resp, err)
			}
			lease := clientv3.LeaseID(resp.Kvs[0].Lease)
			if tt.want == 0 {
				if lease != 0 {
					t.Fatalf("holder of a configured group is on lease %x", lease)
				}
				return
			}
			if lease == 0 {
				t.Fatal("holder of an unconfigured group has no lease: it would stay for ever")
			}
			ttl, err := f.cli.TimeToLive(t.Context(), lease)
			if err != nil {
				t.Fatal(err)
			}
			if got := time.Duration(ttl.GrantedTTL) * time.Second; got != tt.want {
				t.Fatalf("holder lease granted for %v, want %v", got, tt.want)
			}
			// What etcd does once the TTL has passed: the holder goes, and the slot is free.
			if _, err := f.cli.Revoke(t.Context(), lease); err != nil {
				t.Fatal(err)
			}
			if status, kind := f.post(t, "192.0.2.1:1", PreReboot, "next", group); status != 200 {
				t.Fatalf("lock after the holder expired: %d %s", status, kind)
			}
		})
	}
}
