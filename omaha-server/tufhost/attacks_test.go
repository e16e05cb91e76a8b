package tufhost

import (
	"context"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TestFreeze: once the timestamp has expired and the server has not re-signed it, a client
// refuses the repository; after the server re-signs, it accepts it again.
func TestFreeze(t *testing.T) {
	onStorages(t, func(t *testing.T, kind string) {
		f := newFixtureOn(t, kind, 1, 1)
		p := f.payload([]byte("v1"), "1.0.0")
		f.publish(Upload{Targets: f.signTargets(1, tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry), f.targetKey, map[string]repo.Target{"b/p": p})})
		c := f.client()
		if _, err := c.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(tuf.DefaultTimestampExpiry + time.Second)
		if _, err := c.Refresh(context.Background()); !errors.Is(err, &metadata.ErrExpiredMetadata{}) {
			t.Fatalf("Refresh with a stale timestamp = %v, want ErrExpiredMetadata", err)
		}
		signedNow, err := f.host.Refresh(context.Background())
		if err != nil || !signedNow {
			t.Fatalf("host Refresh = %v, %v", signedNow, err)
		}
		r, err := c.Refresh(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if r.TimestampVersion != 2 || r.SnapshotVersion != 1 {
			t.Fatalf("after re-signing: %+v", r)
		}
	})
}

// TestMixAndMatch: a snapshot names targets version 2, the server hands out other bytes
// under 2.targets.json (the version-1 file), and the client refuses.
func TestMixAndMatch(t *testing.T) {
	onStorages(t, func(t *testing.T, kind string) {
		f := newFixtureOn(t, kind, 1, 1)
		exp := tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry)
		p := f.payload([]byte("v1"), "1.0.0")
		v1 := f.signTargets(1, exp, f.targetKey, map[string]repo.Target{"b/p": p})
		f.publish(Upload{Targets: v1})
		f.publish(Upload{Targets: f.signTargets(2, exp, f.targetKey, map[string]repo.Target{"b/p": p, "b/q": f.payload([]byte("v2"), "2.0.0")})})
		f.serve("/tuf/2.targets.json", v1)
		if _, err := f.client().Refresh(context.Background()); !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
			t.Fatalf("Refresh = %v, want ErrBadVersionNumber", err)
		}
		// Nor a snapshot of another version than the timestamp names.
		f.serve("/tuf/2.targets.json", nil)
		f.serve("/tuf/2.snapshot.json", f.get("1.snapshot.json"))
		if _, err := f.client().Refresh(context.Background()); !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
			t.Fatalf("Refresh = %v, want ErrBadVersionNumber", err)
		}
	})
}

// rotate builds the successor of f.root with ch applied, signed by signers.
func (f *fixture) rotate(ch repo.RootChange, signers ...signature.Signer) (*metadata.Metadata[metadata.RootType], []byte) {
	f.t.Helper()
	if ch.Expires.IsZero() {
		ch.Expires = tuf.Expiry(f.clock.Now(), tuf.DefaultRootExpiry)
	}
	next, err := repo.NextRoot(f.root, ch)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := repo.SignRoot(f.root, next, signers...); err != nil {
		f.t.Fatal(err)
	}
	data, err := next.ToBytes(false)
	if err != nil {
		f.t.Fatal(err)
	}
	return next, data
}

// TestRootRotation: the root rotates its own key and the targets key; a client that trusts
// root 1 walks to root 2, and targets signed by the revoked targets key are refused.
func TestRootRotation(t *testing.T) {
	onStorages(t, func(t *testing.T, kind string) {
		f := newFixtureOn(t, kind, 1, 1)
		exp := tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry)
		p := f.payload([]byte("v1"), "1.0.0")
		f.publish(Upload{Targets: f.signTargets(1, exp, f.targetKey, map[string]repo.Target{"b/p": p})})
		c := f.client()
		if _, err := c.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}

		newRoot := newSigner(t, keys.Ed25519)
		newTargets := newSigner(t, keys.RSA)
		oldRootID, _ := tuf.SignerKeyID(f.rootKeys[0])
		oldTargetsID, _ := tuf.SignerKeyID(f.targetKey)
		ch := repo.RootChange{
			Add:    map[string][]crypto.PublicKey{tuf.RoleRoot: {pub(t, newRoot)}, tuf.RoleTargets: {pub(t, newTargets)}},
			Revoke: map[string][]string{tuf.RoleRoot: {oldRootID}, tuf.RoleTargets: {oldTargetsID}},
		}
		// Signed by the new root key alone, it lacks the old root's threshold.
		_, onlyNew := f.rotate(ch, newRoot)
		if _, err := f.host.Publish(context.Background(), Upload{Roots: [][]byte{onlyNew}}); !errors.Is(err, repo.ErrThreshold) {
			t.Fatalf("Publish root signed by the new key only = %v, want ErrThreshold", err)
		}
		root2, root2Data := f.rotate(ch, f.rootKeys[0], newRoot)

		// The served targets are signed by the revoked key: the root alone is refused.
		if _, err := f.host.Publish(context.Background(), Upload{Roots: [][]byte{root2Data}}); !errors.Is(err, repo.ErrThreshold) {
			t.Fatalf("Publish root without re-signed targets = %v, want ErrThreshold", err)
		}
		// Targets signed by the revoked key are refused together with the new root.
		staleTargets := f.signTargets(2, exp, f.targetKey, map[string]repo.Target{"b/p": p})
		if _, err := f.host.Publish(context.Background(), Upload{Roots: [][]byte{root2Data}, Targets: staleTargets}); !errors.Is(err, repo.ErrThreshold) {
			t.Fatalf("Publish with revoked targets key = %v, want ErrThreshold", err)
		}
		st := f.publish(Upload{Roots: [][]byte{root2Data}, Targets: f.signTargets(2, exp, newTargets, map[string]repo.Target{"b/p": p})})
		if st.RootVersion != 2 || st.TargetsVersion != 2 {
			t.Fatalf("state = %+v", st)
		}
		r, err := c.Refresh(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if r.RootVersion != 2 || r.TargetsVersion != 2 {
			t.Fatalf("client: %+v", r)
		}
		// A client installed with root 1 and no cache walks the chain too.
		if r, err := f.client().Refresh(context.Background()); err != nil || r.RootVersion != 2 {
			t.Fatalf("fresh client: %+v, %v", r, err)
		}

		// An attacker holding the revoked targets key (and the online keys) serves targets
		// signed with it: a client that refreshed refuses them.
		f.serve("/tuf/3.targets.json", f.signTargets(3, exp, f.targetKey, map[string]repo.Target{"b/p": p}))
		snap := metadata.Snapshot(tuf.Expiry(f.clock.Now(), time.Hour))
		snap.Signed.Version = st.SnapshotVersion + 1
		snap.Signed.Meta["targets.json"] = metadata.MetaFile(3)
		f.serve("/tuf/3.snapshot.json", signed(t, snap, f.onlineKeys[0]))
		ts := metadata.Timestamp(tuf.Expiry(f.clock.Now(), time.Hour))
		ts.Signed.Version = st.TimestampVersion + 1
		ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(snap.Signed.Version)
		f.serve("/tuf/timestamp.json", signed(t, ts, f.onlineKeys[1]))
		if _, err := c.Refresh(context.Background()); !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
			t.Fatalf("targets signed by a revoked key: Refresh = %v, want ErrUnsignedMetadata", err)
		}
		// And a root 3 signed only by the revoked root key is refused too.
		f.root = root2
		f.serve("/tuf/timestamp.json", nil)
		next, err := repo.NextRoot(root2, repo.RootChange{Expires: tuf.Expiry(f.clock.Now(), tuf.DefaultRootExpiry)})
		if err != nil {
			t.Fatal(err)
		}
		f.serve("/tuf/3.root.json", signed(t, next, f.rootKeys[0]))
		if _, err := c.Refresh(context.Background()); !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
			t.Fatalf("root signed by a revoked key: Refresh = %v, want ErrUnsignedMetadata", err)
		}
	})
}

// TestRootThreshold: with 2-of-3 root keys, one signature is not enough, for the server
// and for a client; two are.
func TestRootThreshold(t *testing.T) {
	onStorages(t, func(t *testing.T, kind string) {
		f := newFixtureOn(t, kind, 3, 2)
		exp := tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry)
		p := f.payload([]byte("v1"), "1.0.0")
		f.publish(Upload{Targets: f.signTargets(1, exp, f.targetKey, map[string]repo.Target{"b/p": p})})
		c := f.client()
		if _, err := c.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		ch := repo.RootChange{Thresholds: map[string]int{tuf.RoleRoot: 3}}
		_, one := f.rotate(ch, f.rootKeys[1])
		if _, err := f.host.Publish(context.Background(), Upload{Roots: [][]byte{one}}); !errors.Is(err, repo.ErrThreshold) {
			t.Fatalf("Publish with 1 of 2 = %v, want ErrThreshold", err)
		}
		f.serve("/tuf/2.root.json", one)
		if _, err := c.Refresh(context.Background()); !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
			t.Fatalf("Refresh with 1 of 2 = %v, want ErrUnsignedMetadata", err)
		}
		f.serve("/tuf/2.root.json", nil)
		// Two old signatures meet the old threshold but the new root asks for three.
		_, two := f.rotate(ch, f.rootKeys[0], f.rootKeys[2])
		if _, err := f.host.Publish(context.Background(), Upload{Roots: [][]byte{two}}); !errors.Is(err, repo.ErrThreshold) {
			t.Fatalf("Publish with 2 of 3 under the new threshold = %v, want ErrThreshold", err)
		}
		_, three := f.rotate(ch, f.rootKeys...)
		if st := f.publish(Upload{Roots: [][]byte{three}}); st.RootVersion != 2 || st.TimestampVersion != 2 {
			t.Fatalf("state = %+v", st)
		}
		if r, err := c.Refresh(context.Background()); err != nil || r.RootVersion != 2 {
			t.Fatalf("Refresh = %+v, %v", r, err)
		}
	})
}

// TestResign: the loop re-signs the timestamp when half its validity is gone, the snapshot
// likewise, and a host reopened from its directory serves the same state.
func TestResign(t *testing.T) {
	onStorages(t, func(t *testing.T, kind string) {
		f := newFixtureOn(t, kind, 1, 1)
		ctx := context.Background()
		if did, err := f.host.Refresh(ctx); did || err != nil {
			t.Fatalf("Refresh before any publish = %v, %v", did, err)
		}
		if _, err := f.host.Resign(ctx); !errors.Is(err, ErrNoTargets) {
			t.Fatalf("Resign before any publish = %v", err)
		}
		p := f.payload([]byte("v1"), "1.0.0")
		f.publish(Upload{Targets: f.signTargets(1, tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry), f.targetKey, map[string]repo.Target{"b/p": p})})
		if did, err := f.host.Refresh(ctx); did || err != nil {
			t.Fatalf("Refresh when fresh = %v, %v", did, err)
		}
		f.clock.Add(tuf.DefaultTimestampExpiry/2 + time.Second)

		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() { done <- f.host.Run(runCtx, 5*time.Millisecond) }()
		deadline := time.Now().Add(10 * time.Second)
		for f.host.State().TimestampVersion < 2 {
			if time.Now().After(deadline) {
				t.Fatal("Run did not re-sign the timestamp")
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
		st := f.host.State()
		if st.TimestampVersion != 2 || st.SnapshotVersion != 1 || !st.TimestampExpires.Equal(f.clock.Now().Add(tuf.DefaultTimestampExpiry).Truncate(time.Second)) {
			t.Fatalf("after timestamp re-sign: %+v", st)
		}
		f.clock.Add(tuf.DefaultSnapshotExpiry/2 + time.Second)
		if did, err := f.host.Refresh(ctx); !did || err != nil {
			t.Fatalf("Refresh = %v, %v", did, err)
		}
		st = f.host.State()
		if st.SnapshotVersion != 2 || st.TimestampVersion != 3 {
			t.Fatalf("after snapshot re-sign: %+v", st)
		}
		if _, err := f.client().Refresh(ctx); err != nil {
			t.Fatal(err)
		}

		again := f.reopen()
		if got := again.State(); got != st {
			t.Fatalf("reopened state %+v, want %+v", got, st)
		}
	})
}

// TestOpenRefusesWrongOnlineKeys: the server will not start with online keys the root
// does not list.
func TestOpenRefusesWrongOnlineKeys(t *testing.T) {
	f := newFixture(t, 1, 1)
	_, err := Open(context.Background(), Config{
		Dir:         filepath.Join(t.TempDir(), "tuf"),
		Keys:        []signature.Signer{f.onlineKeys[0], newSigner(t, keys.Ed25519)},
		InitialRoot: f.rootData,
		Now:         f.clock.Now,
	})
	if !errors.Is(err, ErrOnlineKeys) {
		t.Fatalf("Open = %v, want ErrOnlineKeys", err)
	}
	if _, err := Open(context.Background(), Config{Dir: t.TempDir(), Keys: f.onlineKeys}); !errors.Is(err, ErrNoRoot) {
		t.Fatalf("Open without a root = %v, want ErrNoRoot", err)
	}
}

// TestOnlineKeyRotation: the server holds the old and the new timestamp key; once the root
// that swaps them is published, timestamps are signed with the new key and clients follow.
func TestOnlineKeyRotation(t *testing.T) {
	onStorages(t, func(t *testing.T, kind string) {
		newTS := newSigner(t, keys.Ed25519)
		f := newFixtureOn(t, kind, 1, 1, newTS)

		p := f.payload([]byte("v1"), "1.0.0")
		exp := tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry)
		f.publish(Upload{Targets: f.signTargets(1, exp, f.targetKey, map[string]repo.Target{"b/p": p})})
		c := f.client()
		if _, err := c.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		oldID, _ := tuf.SignerKeyID(f.onlineKeys[1])
		_, root2 := f.rotate(repo.RootChange{
			Add:    map[string][]crypto.PublicKey{tuf.RoleTimestamp: {pub(t, newTS)}},
			Revoke: map[string][]string{tuf.RoleTimestamp: {oldID}},
		}, f.rootKeys[0])
		f.publish(Upload{Roots: [][]byte{root2}})
		ts, err := metadata.Timestamp().FromBytes(f.get("timestamp.json"))
		if err != nil {
			t.Fatal(err)
		}
		newID, _ := tuf.SignerKeyID(newTS)
		if len(ts.Signatures) != 1 || ts.Signatures[0].KeyID != newID {
			t.Fatalf("timestamp signatures %+v, want only %s", ts.Signatures, newID)
		}
		if r, err := c.Refresh(context.Background()); err != nil || r.RootVersion != 2 {
			t.Fatalf("Refresh = %+v %v", r, err)
		}
		// A server restarted with only the revoked key refuses to start.
		_, err = Open(context.Background(), f.storage(Config{Keys: f.onlineKeys[:2], Now: f.clock.Now}))
		if !errors.Is(err, ErrOnlineKeys) {
			t.Fatalf("Open with the revoked timestamp key = %v", err)
		}
	})
}

func TestMetrics(t *testing.T) {
	onStorages(t, func(t *testing.T, kind string) {
		f := newFixtureOn(t, kind, 1, 1)
		reg := prometheus.NewRegistry()
		h, err := Open(context.Background(), f.storage(Config{Keys: f.onlineKeys, Now: f.clock.Now, Registerer: reg}))
		if err != nil {
			t.Fatal(err)
		}
		p := f.payload([]byte("v1"), "1.0.0")
		if _, err := h.Publish(context.Background(), Upload{Targets: f.signTargets(1, tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry), f.targetKey, map[string]repo.Target{"b/p": p})}); err != nil {
			t.Fatal(err)
		}
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range families {
			for _, m := range mf.GetMetric() {
				key := mf.GetName()
				for _, l := range m.GetLabel() {
					key += "/" + l.GetValue()
				}
				got[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
		st := h.State()
		want := map[string]float64{
			"switchyard_tuf_metadata_version/root":                       1,
			"switchyard_tuf_metadata_version/targets":                    1,
			"switchyard_tuf_metadata_version/snapshot":                   1,
			"switchyard_tuf_metadata_version/timestamp":                  1,
			"switchyard_tuf_metadata_expiry_timestamp_seconds/timestamp": float64(st.TimestampExpires.Unix()),
			"switchyard_tuf_metadata_expiry_timestamp_seconds/snapshot":  float64(st.SnapshotExpires.Unix()),
			"switchyard_tuf_metadata_expiry_timestamp_seconds/root":      float64(f.root.Signed.Expires.Unix()),
			"switchyard_tuf_metadata_expiry_timestamp_seconds/targets":   float64(tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry).Unix()),
			"switchyard_tuf_signing_failures_total":                      0,
			"switchyard_tuf_signing_leader":                              1, // h published, so it leads
		}
		for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
			want["switchyard_omaha_server_tuf_expiry_seconds/"+role] = want["switchyard_tuf_metadata_expiry_timestamp_seconds/"+role] - float64(f.clock.Now().Unix())
		}
		if len(got) != len(want) {
			t.Fatalf("metrics %v", got)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
	})
}

// TestCrashBeforeCommit: files a publish wrote before it died (targets and snapshot newer
// than what timestamp.json names) are not served as current after a restart, and the next
// publish overwrites them.
func TestCrashBeforeCommit(t *testing.T) {
	f := newFixture(t, 1, 1)
	exp := tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry)
	p := f.payload([]byte("v1"), "1.0.0")
	f.publish(Upload{Targets: f.signTargets(1, exp, f.targetKey, map[string]repo.Target{"b/p": p})})
	dir := f.host.cfg.Dir
	for _, name := range []string{"2.targets.json", "2.snapshot.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(`{"torn`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := f.open(dir)
	if st := h.State(); st.TargetsVersion != 1 || st.SnapshotVersion != 1 || st.TimestampVersion != 1 {
		t.Fatalf("after restart: %+v", st)
	}
	f.setHost(h)
	st, err := h.Publish(context.Background(), Upload{Targets: f.signTargets(2, exp, f.targetKey, map[string]repo.Target{"b/p": p})})
	if err != nil || st.TargetsVersion != 2 || st.SnapshotVersion != 2 {
		t.Fatalf("Publish = %+v %v", st, err)
	}
	again := f.open(dir)
	if again.State() != st {
		t.Fatalf("reopened %+v, want %+v", again.State(), st)
	}
	// An expired root is refused on upload.
	_, expired := f.rotate(repo.RootChange{Expires: f.clock.Now().Add(-time.Second)}, f.rootKeys[0])
	if _, err := again.Publish(context.Background(), Upload{Roots: [][]byte{expired}}); !errors.Is(err, repo.ErrExpired) {
		t.Fatalf("Publish of an expired root = %v", err)
	}
}
