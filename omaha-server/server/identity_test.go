package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/hostauth"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha/hostsig"
)

// identityNow is the server's clock in the host identity tests; hosts sign at it.
var identityNow = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func hostKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

// sendSigned posts req signed with key at time at (nil key: unsigned) and returns the
// HTTP status and body.
func (f *fixture) sendSigned(req *omaha.Request, key ed25519.PrivateKey, at time.Time) (int, string) {
	f.t.Helper()
	body, err := req.Marshal()
	if err != nil {
		f.t.Fatal(err)
	}
	hr, err := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/update/", bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if key != nil {
		if err := hostsig.Sign(hr, body, key, at); err != nil {
			f.t.Fatal(err)
		}
	}
	resp, err := f.srv.Client().Do(hr)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// signedOffer sends an update check signed with key and reports whether it was offered an
// update.
func (f *fixture) signedOffer(h omaha.Host, key ed25519.PrivateKey, events ...*omaha.Event) bool {
	f.t.Helper()
	code, body := f.sendSigned(omaha.NewUpdateCheckRequest(h, false, events...), key, identityNow)
	if code != http.StatusOK {
		f.t.Fatalf("%s: HTTP %d: %s", h.MachineID, code, body)
	}
	resp, err := omaha.ParseResponse(strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	_, err = resp.Offer("")
	return err == nil
}

func (f *fixture) signedEvent(h omaha.Host, key ed25519.PrivateKey, e *omaha.Event) {
	f.t.Helper()
	if code, body := f.sendSigned(omaha.NewEventRequest(h, e), key, identityNow); code != http.StatusOK {
		f.t.Fatalf("%s: HTTP %d: %s", h.MachineID, code, body)
	}
}

// rollBack is one host's failed attempt: granted, installed, rolled back.
func (f *fixture) rollBack(machine string, key ed25519.PrivateKey) {
	f.t.Helper()
	h := host(machine, "4081.1.0")
	if !f.signedOffer(h, key) {
		f.t.Fatalf("%s: no offer", machine)
	}
	f.signedEvent(h, key, omaha.EventInstalled())
	f.signedOffer(h, key, omaha.EventRollback(0))
}

// succeed is one host's successful attempt: granted, installed.
func (f *fixture) succeed(machine string, key ed25519.PrivateKey) {
	f.t.Helper()
	h := host(machine, "4081.1.0")
	if !f.signedOffer(h, key) {
		f.t.Fatalf("%s: no offer", machine)
	}
	f.signedEvent(h, key, omaha.EventInstalled())
}

func newIdentityFixture(t *testing.T, st store.Store, mode hostauth.Mode, countUnproven bool) *fixture {
	f := newFixtureConfig(t, st, server.Config{Now: func() time.Time { return identityNow },
		HostIdentity: &hostauth.Config{Mode: mode, CountUnproven: countUnproven}})
	f.setup()
	return f
}

func (f *fixture) halted() bool {
	f.t.Helper()
	return ok(f.admin.GetGroup(context.Background(), store.FlatcarAppID, "stable"))(f.t).Halted()
}

// TestInventedHostsCannotHalt: with --count-unproven-hosts=false, two invented hosts (no
// key) reporting rollbacks do not halt the rollout, and their reports are still stored;
// with the default (true) they do, as before host identity. Two hosts with keys halt it.
func TestInventedHostsCannotHalt(t *testing.T) {
	for _, tt := range []struct {
		name          string
		countUnproven bool
		keys          []ed25519.PrivateKey
		wantHalt      bool
	}{
		{name: "unsigned, not counted", countUnproven: false, keys: []ed25519.PrivateKey{nil, nil}, wantHalt: false},
		{name: "unsigned, counted", countUnproven: true, keys: []ed25519.PrivateKey{nil, nil}, wantHalt: true},
		{name: "signed, not counting unproven", countUnproven: false, keys: []ed25519.PrivateKey{hostKey(1), hostKey(2)}, wantHalt: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st store.Store) {
				f := newIdentityFixture(t, st, hostauth.TrustOnFirstUse, tt.countUnproven)
				f.setPolicy(policy.Policy{HaltFailures: 2, HaltOf: 2})
				for i, k := range tt.keys {
					f.rollBack([]string{"invented-1", "invented-2"}[i], k)
				}
				if got := f.halted(); got != tt.wantHalt {
					t.Fatalf("halted = %v, want %v", got, tt.wantHalt)
				}
				if d := f.instance("invented-2"); d.Status != store.StatusRolledBack {
					t.Errorf("the report was not stored: %+v", d.Instance)
				}
			})
		})
	}
}

// TestForgedSuccessesHideNoHalt: forged successes between two real failures (a halt at 2
// of the last 2) do not count when unproven reports are left out, and a forged success
// for a machine id that has a key never counts, whatever the setting.
func TestForgedSuccessesHideNoHalt(t *testing.T) {
	t.Run("invented hosts", func(t *testing.T) {
		forEachStore(t, func(t *testing.T, st store.Store) {
			f := newIdentityFixture(t, st, hostauth.TrustOnFirstUse, false)
			f.setPolicy(policy.Policy{HaltFailures: 2, HaltOf: 2})
			f.rollBack("real-1", hostKey(1))
			f.succeed("forged-1", nil)
			f.succeed("forged-2", nil)
			f.rollBack("real-2", hostKey(2))
			if !f.halted() {
				t.Fatal("forged successes hid the halt")
			}
		})
	})
	t.Run("a real host's machine id", func(t *testing.T) {
		forEachStore(t, func(t *testing.T, st store.Store) {
			f := newIdentityFixture(t, st, hostauth.TrustOnFirstUse, true)
			f.setPolicy(policy.Policy{HaltFailures: 1, HaltOf: 1})
			h := host("real-1", "4081.1.0")
			if !f.signedOffer(h, hostKey(1)) {
				t.Fatal("no offer")
			}
			// Someone without the host's key reports its success, unsigned and signed with
			// another key; then the host itself reports the rollback.
			f.signedEvent(h, nil, omaha.EventInstalled())
			f.signedEvent(h, hostKey(9), omaha.EventInstalled())
			rs := ok(f.admin.RolloutStatus(context.Background(), store.FlatcarAppID, "stable", ""))(t)
			if rs.Complete != 0 || rs.InFlight != 1 {
				t.Fatalf("forged successes counted: %+v", rs)
			}
			f.signedOffer(h, hostKey(1), omaha.EventRollback(0))
			if !f.halted() {
				t.Fatal("the host's own rollback did not halt the group")
			}
		})
	})
}

// TestSecondKeyForPinnedMachine: the first signed contact pins the key; a report for that
// machine id signed with another key is stored but never counts, even when unproven
// reports do, and the pin stays.
func TestSecondKeyForPinnedMachine(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newIdentityFixture(t, st, hostauth.TrustOnFirstUse, true)
		f.setPolicy(policy.Policy{HaltFailures: 1, HaltOf: 1})
		h := host("pinned-1", "4081.1.0")
		if !f.signedOffer(h, hostKey(1)) {
			t.Fatal("a host with a key was not offered the update")
		}
		k := ok(st.GetHostKey(context.Background(), "pinned-1"))(t)
		if want := hostsig.FormatPublicKey(hostKey(1).Public().(ed25519.PublicKey)); k.PublicKey != want || k.Enrolled {
			t.Fatalf("pin = %+v, want %s pinned on first use", k, want)
		}
		f.rollBack("pinned-1", hostKey(2))
		if f.halted() {
			t.Fatal("a report signed with a second key counted")
		}
		if d := f.instance("pinned-1"); d.Status != store.StatusRolledBack {
			t.Errorf("the report was not stored: %+v", d.Instance)
		}
		if k2 := ok(st.GetHostKey(context.Background(), "pinned-1"))(t); k2.PublicKey != k.PublicKey {
			t.Fatalf("the pin moved to %s", k2.PublicKey)
		}
	})
}

// TestStaleSignatureRefused: a signature dated outside the allowed skew (a replay of an
// old request) and one that does not verify are refused with 401 and store nothing.
func TestStaleSignatureRefused(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newIdentityFixture(t, st, hostauth.TrustOnFirstUse, true)
		req := omaha.NewUpdateCheckRequest(host("replayed-1", "4081.1.0"), false)
		code, body := f.sendSigned(req, hostKey(1), identityNow.Add(-hostsig.MaxSkew-time.Minute))
		if code != http.StatusUnauthorized || !strings.Contains(body, "skew") {
			t.Fatalf("stale signature: HTTP %d %q, want 401 naming the skew", code, body)
		}
		if _, err := st.GetInstances(context.Background(), "replayed-1", 1); err == nil {
			t.Error("a refused request was stored")
		}
		if _, err := st.GetHostKey(context.Background(), "replayed-1"); err == nil {
			t.Error("a refused request pinned a key")
		}
		// The same request, fresh, is accepted.
		if !f.signedOffer(host("replayed-1", "4081.1.0"), hostKey(1)) {
			t.Fatal("a fresh signed check was not offered the update")
		}
	})
}

// TestEnrollmentMode: with --host-identity=enrolled a signed host counts only once an
// operator enrolled its key; first contact pins nothing.
func TestEnrollmentMode(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		f := newIdentityFixture(t, st, hostauth.Enrolled, false)
		f.setPolicy(policy.Policy{HaltFailures: 1, HaltOf: 1})
		ctx := context.Background()
		f.rollBack("enrolled-1", hostKey(1))
		if f.halted() {
			t.Fatal("an unenrolled host's rollback counted")
		}
		if _, err := st.GetHostKey(ctx, "enrolled-1"); err == nil {
			t.Fatal("enrolled mode pinned a key on first contact")
		}
		ok(f.admin.EnrollHostKey(ctx, "enrolled-2", hostsig.FormatPublicKey(hostKey(2).Public().(ed25519.PublicKey))))(t)
		f.rollBack("enrolled-2", hostKey(2))
		if !f.halted() {
			t.Fatal("an enrolled host's rollback did not count")
		}
	})
}

// TestOldClientsWork: an unsigned request (Flatcar's update_engine) is answered as before
// in every mode.
func TestOldClientsWork(t *testing.T) {
	for _, mode := range []hostauth.Mode{hostauth.TrustOnFirstUse, hostauth.Enrolled} {
		t.Run(string(mode), func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st store.Store) {
				f := newIdentityFixture(t, st, mode, false)
				if !f.offered("old-1", "4081.1.0") {
					t.Fatal("an old client was not offered the update")
				}
			})
		})
	}
}
