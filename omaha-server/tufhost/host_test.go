package tufhost

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/client"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestRoundTrip(t *testing.T) {
	onStorages(t, func(t *testing.T, kind string) {
		f := newFixtureOn(t, kind, 1, 1)
		content := []byte("payload bytes of version 1.2.3")
		p := f.payload(content, "1.2.3")
		name := "amd64-usr/1.2.3/payload.sy"
		data := f.signTargets(1, tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry), f.targetKey, map[string]repo.Target{name: p})

		pinned, err := f.host.Verify(Upload{Targets: data}, repo.Payload{Length: p.Length, SHA256: p.SHA256, Version: "1.2.3"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pinned) != 1 || pinned[0].Name != name || pinned[0].Custom.ReleaseCounter != 7 {
			t.Fatalf("pinned = %+v", pinned)
		}
		st := f.publish(Upload{Targets: data})
		if st.TargetsVersion != 1 || st.SnapshotVersion != 1 || st.TimestampVersion != 1 {
			t.Fatalf("state = %+v", st)
		}
		if st.TimestampExpires != f.clock.Now().Add(tuf.DefaultTimestampExpiry) || st.TimestampExpires.Nanosecond() != 0 {
			t.Fatalf("timestamp expires %v", st.TimestampExpires)
		}

		c := f.client()
		r, err := c.Refresh(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Find("amd64-usr", "1.2.3")
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != name || got.Length != p.Length || got.SHA256 != p.SHA256 || got.Custom.PartitionSHA256 != p.Custom.PartitionSHA256 || got.Custom.Channels[0] != "stable" {
			t.Fatalf("target = %+v", got)
		}
		if _, err := r.Find("amd64-usr", "9.9.9"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("Find unknown: %v", err)
		}
		if _, err := r.Lookup(name); err != nil {
			t.Fatal(err)
		}

		// The payload is served at its consistent-snapshot name and hashes to the pin.
		resp, err := http.Get(f.srv.URL + "/tuf/targets/amd64-usr/1.2.3/" + hexOf(p.SHA256[:]) + ".payload.sy")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || sha256.Sum256(body) != p.SHA256 || resp.Header.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("target: %s %q %q", resp.Status, body, resp.Header.Get("Content-Type"))
		}

		// A second client refresh with the cache in place is still fine, and a re-upload of
		// the same targets changes nothing.
		if _, err := c.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st2 := f.publish(Upload{Targets: data}); st2 != st {
			t.Fatalf("idempotent publish changed state: %+v → %+v", st, st2)
		}
	})
}

func TestVerifyRefuses(t *testing.T) {
	onStorages(t, func(t *testing.T, kind string) {
		f := newFixtureOn(t, kind, 1, 1)
		p := f.payload([]byte("one"), "1.0.0")
		other := f.payload([]byte("two"), "2.0.0")
		exp := tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry)
		v1 := f.signTargets(1, exp, f.targetKey, map[string]repo.Target{"b/1.0.0/p": p})
		f.publish(Upload{Targets: v1})
		pay := repo.Payload{Length: p.Length, SHA256: p.SHA256, Version: "1.0.0"}
		tests := []struct {
			name    string
			targets []byte
			payload repo.Payload
			want    error
		}{
			{"not newer", f.signTargets(1, exp, f.targetKey, map[string]repo.Target{"b/1.0.0/p": p, "b/x": other}), pay, repo.ErrVersion},
			{"older", f.signTargets(0, exp, f.targetKey, map[string]repo.Target{"b/1.0.0/p": p}), pay, repo.ErrVersion},
			{"wrong key", f.signTargets(2, exp, f.onlineKeys[0], map[string]repo.Target{"b/1.0.0/p": p}), pay, repo.ErrThreshold},
			{"expired", f.signTargets(2, f.clock.Now().Add(-time.Second), f.targetKey, map[string]repo.Target{"b/1.0.0/p": p}), pay, repo.ErrExpired},
			{"other sha", f.signTargets(2, exp, f.targetKey, map[string]repo.Target{"b/2.0.0/p": other}), pay, repo.ErrNotPinned},
			{"other length", f.signTargets(2, exp, f.targetKey, map[string]repo.Target{"b/1.0.0/p": p}), repo.Payload{Length: p.Length + 1, SHA256: p.SHA256}, repo.ErrNotPinned},
			{"other version", f.signTargets(2, exp, f.targetKey, map[string]repo.Target{"b/1.0.0/p": p}), repo.Payload{Length: p.Length, SHA256: p.SHA256, Version: "1.0.1"}, repo.ErrNotPinned},
			{"garbage", []byte(`{"signed":`), pay, repo.ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := f.host.Verify(Upload{Targets: tt.targets}, tt.payload); !errors.Is(err, tt.want) {
					t.Fatalf("Verify = %v, want %v", err, tt.want)
				}
				if tt.want != repo.ErrNotPinned {
					if _, err := f.host.Publish(context.Background(), Upload{Targets: tt.targets}); !errors.Is(err, tt.want) {
						t.Fatalf("Publish = %v, want %v", err, tt.want)
					}
				}
			})
		}
		if st := f.host.State(); st.TargetsVersion != 1 || st.TimestampVersion != 1 {
			t.Fatalf("refused uploads changed the state: %+v", st)
		}
	})
}

// TestRollback: a client that has seen newer metadata refuses an older timestamp, and a
// snapshot (signed with the online key, as by an attacker holding it) that lists an older
// targets version.
func TestRollback(t *testing.T) {
	onStorages(t, func(t *testing.T, kind string) {
		f := newFixtureOn(t, kind, 1, 1)
		exp := tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry)
		p := f.payload([]byte("v1"), "1.0.0")
		f.publish(Upload{Targets: f.signTargets(1, exp, f.targetKey, map[string]repo.Target{"b/p1": p})})
		oldTimestamp := f.get("timestamp.json")
		f.publish(Upload{Targets: f.signTargets(2, exp, f.targetKey, map[string]repo.Target{"b/p1": p, "b/p2": f.payload([]byte("v2"), "2.0.0")})})
		c := f.client()
		if _, err := c.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}

		t.Run("older timestamp", func(t *testing.T) {
			f.serve("/tuf/timestamp.json", oldTimestamp)
			defer f.serve("/tuf/timestamp.json", nil)
			_, err := c.Refresh(context.Background())
			if !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
				t.Fatalf("Refresh = %v, want ErrBadVersionNumber", err)
			}
		})
		t.Run("older targets", func(t *testing.T) {
			snap := metadata.Snapshot(tuf.Expiry(f.clock.Now(), time.Hour))
			snap.Signed.Version = 3
			snap.Signed.Meta["targets.json"] = metadata.MetaFile(1)
			snapData := signed(t, snap, f.onlineKeys[0])
			ts := metadata.Timestamp(tuf.Expiry(f.clock.Now(), time.Hour))
			ts.Signed.Version = 3
			ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(3)
			f.serve("/tuf/3.snapshot.json", snapData)
			f.serve("/tuf/timestamp.json", signed(t, ts, f.onlineKeys[1]))
			defer f.serve("/tuf/timestamp.json", nil)
			_, err := c.Refresh(context.Background())
			if !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
				t.Fatalf("Refresh = %v, want ErrBadVersionNumber", err)
			}
		})
		// The genuine repository still works afterwards.
		if _, err := c.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// signed signs md with s and returns its bytes.
func signed[T metadata.Roles](t *testing.T, md *metadata.Metadata[T], s signature.Signer) []byte {
	t.Helper()
	if _, err := md.Sign(s); err != nil {
		t.Fatal(err)
	}
	data, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
