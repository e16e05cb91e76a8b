package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// RunTUF runs the cases of the shared TUF repository and its signing lease (store.TUF).
// oneServer is the store's promise that one process owns the database, so the lease is
// always granted (SQLite).
func RunTUF(t *testing.T, newStore Factory, oneServer bool) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, oneServer bool)
	}{
		{"TUFFiles", testTUFFiles},
		{"TUFLease", testTUFLease},
		{"TUFLeaseExpiry", testTUFLeaseExpiry},
		{"TUFRace", testTUFRace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t), oneServer) })
	}
}

func tsFile(version int64, data string) *store.TUFFile {
	return &store.TUFFile{Role: "timestamp", Version: version, Data: []byte(data)}
}

// testTUFFiles: files are written once per (role, version), bad input is refused without
// a write, the initial root may be written by every replica with the same bytes.
func testTUFFiles(t *testing.T, s store.Store, _ bool) {
	ctx := context.Background()
	cur := must(s.TUFCurrent(ctx))(t)
	if cur.Version != 0 || cur.Data != nil || cur.Role != "timestamp" {
		t.Fatalf("TUFCurrent of an empty store = %+v", cur)
	}
	_, err := s.GetTUFFile(ctx, "root", 1)
	wantErr(t, err, store.ErrNotFound)

	root1 := store.TUFFile{Role: "root", Version: 1, Data: []byte(`{"root":1}`)}
	for range 2 { // every replica starts from the same initial root
		if err := s.CommitTUF(ctx, store.TUFCommit{Files: []store.TUFFile{root1}}); err != nil {
			t.Fatal(err)
		}
	}
	err = s.CommitTUF(ctx, store.TUFCommit{Files: []store.TUFFile{{Role: "root", Version: 1, Data: []byte(`{"other":1}`)}}})
	wantErr(t, err, store.ErrConflict)

	bad := []struct {
		name string
		c    store.TUFCommit
	}{
		{"timestamp without lease", store.TUFCommit{Timestamp: tsFile(1, "t")}},
		{"unknown role", store.TUFCommit{Files: []store.TUFFile{{Role: "mirror", Version: 1, Data: []byte("x")}}}},
		{"timestamp as a file", store.TUFCommit{Files: []store.TUFFile{{Role: "timestamp", Version: 1, Data: []byte("x")}}}},
		{"version zero", store.TUFCommit{Files: []store.TUFFile{{Role: "targets", Version: 0, Data: []byte("x")}}}},
		{"empty", store.TUFCommit{Files: []store.TUFFile{{Role: "targets", Version: 2, Data: nil}}}},
		{"too large", store.TUFCommit{Files: []store.TUFFile{{Role: "targets", Version: 2, Data: make([]byte, store.MaxTUFFile+1)}}}},
		{"timestamp not newer", store.TUFCommit{Fence: 1, PrevTimestamp: 3, Timestamp: tsFile(3, "t")}},
		{"negative fence", store.TUFCommit{Fence: -1}},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) { wantErr(t, s.CommitTUF(ctx, b.c), store.ErrInvalid) })
	}

	l := must(s.AcquireTUFLease(ctx, "a", time.Minute, false))(t)
	c := store.TUFCommit{Fence: l.Fence, Files: []store.TUFFile{
		{Role: "targets", Version: 1, Data: []byte(`{"targets":1}`)},
		{Role: "snapshot", Version: 1, Data: []byte(`{"snapshot":1}`)},
	}, Timestamp: tsFile(1, `{"timestamp":1}`)}
	if err := s.CommitTUF(ctx, c); err != nil {
		t.Fatal(err)
	}
	cur = must(s.TUFCurrent(ctx))(t)
	if cur.Version != 1 || string(cur.Data) != `{"timestamp":1}` {
		t.Fatalf("TUFCurrent = %+v", cur)
	}
	if got := must(s.GetTUFFile(ctx, "snapshot", 1))(t); string(got) != `{"snapshot":1}` {
		t.Fatalf("snapshot 1 = %q", got)
	}

	// A second write of snapshot 1 (other bytes) fails whole: the targets it carried and
	// the timestamp are not written either.
	err = s.CommitTUF(ctx, store.TUFCommit{Fence: l.Fence, PrevTimestamp: 1, Files: []store.TUFFile{
		{Role: "targets", Version: 2, Data: []byte(`{"targets":2}`)},
		{Role: "snapshot", Version: 1, Data: []byte(`{"fork":1}`)},
	}, Timestamp: tsFile(2, `{"timestamp":2}`)})
	wantErr(t, err, store.ErrConflict)
	_, err = s.GetTUFFile(ctx, "targets", 2)
	wantErr(t, err, store.ErrNotFound)
	if got := must(s.GetTUFFile(ctx, "snapshot", 1))(t); string(got) != `{"snapshot":1}` {
		t.Fatalf("snapshot 1 after a refused fork = %q", got)
	}
	// A timestamp that does not follow the current one is stale, and writes nothing.
	err = s.CommitTUF(ctx, store.TUFCommit{Fence: l.Fence, PrevTimestamp: 0, Files: []store.TUFFile{
		{Role: "snapshot", Version: 2, Data: []byte(`{"snapshot":2}`)},
	}, Timestamp: tsFile(1, `{"fork":1}`)})
	wantErr(t, err, store.ErrStale)
	_, err = s.GetTUFFile(ctx, "snapshot", 2)
	wantErr(t, err, store.ErrNotFound)
	if cur := must(s.TUFCurrent(ctx))(t); string(cur.Data) != `{"timestamp":1}` {
		t.Fatalf("TUFCurrent after a stale write = %+v", cur)
	}
}

// testTUFLease: the lease is renewed by its holder with the same fence, refused to
// another (unless one server owns the store), taken by a steal with a new fence, after
// which the old holder cannot write; a release hands it over at once.
func testTUFLease(t *testing.T, s store.Store, oneServer bool) {
	ctx := context.Background()
	_, err := s.AcquireTUFLease(ctx, "", time.Minute, false)
	wantErr(t, err, store.ErrInvalid)
	_, err = s.AcquireTUFLease(ctx, "a", 0, false)
	wantErr(t, err, store.ErrInvalid)

	a := must(s.AcquireTUFLease(ctx, "a", time.Minute, false))(t)
	if a.Holder != "a" || a.Fence < 1 || time.Until(a.Expires) < 30*time.Second {
		t.Fatalf("lease = %+v", a)
	}
	if again := must(s.AcquireTUFLease(ctx, "a", time.Minute, false))(t); again.Fence != a.Fence {
		t.Fatalf("a renewal moved the fence: %+v → %+v", a, again)
	}
	b, err := s.AcquireTUFLease(ctx, "b", time.Minute, false)
	if oneServer {
		if err != nil || b.Fence != a.Fence+1 {
			t.Fatalf("one server: AcquireTUFLease(b) = %+v, %v; want fence %d", b, err, a.Fence+1)
		}
		a = must(s.AcquireTUFLease(ctx, "a", time.Minute, false))(t)
	} else {
		wantErr(t, err, store.ErrLeaseHeld)
		if b.Holder != "a" || b.Fence != a.Fence {
			t.Fatalf("refused lease reports %+v, want a's %+v", b, a)
		}
	}
	b = must(s.AcquireTUFLease(ctx, "b", time.Minute, true))(t)
	if b.Holder != "b" || b.Fence != a.Fence+1 {
		t.Fatalf("stolen lease = %+v, after %+v", b, a)
	}
	// The old holder's write fails and leaves nothing.
	err = s.CommitTUF(ctx, store.TUFCommit{Fence: a.Fence, Files: []store.TUFFile{{Role: "targets", Version: 1, Data: []byte("t")}},
		Timestamp: tsFile(1, "stale")})
	wantErr(t, err, store.ErrStale)
	if _, err := s.GetTUFFile(ctx, "targets", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a stale leader's file was written: %v", err)
	}
	if cur := must(s.TUFCurrent(ctx))(t); cur.Version != 0 {
		t.Fatalf("a stale leader's timestamp was written: %+v", cur)
	}
	if !oneServer {
		_, err = s.AcquireTUFLease(ctx, "a", time.Minute, false)
		wantErr(t, err, store.ErrLeaseHeld)
	}
	// The new holder writes.
	if err := s.CommitTUF(ctx, store.TUFCommit{Fence: b.Fence, Timestamp: tsFile(1, "b")}); err != nil {
		t.Fatal(err)
	}
	// A release by the wrong fence changes nothing; by the holder it frees the lease.
	if err := s.ReleaseTUFLease(ctx, "b", a.Fence); err != nil {
		t.Fatal(err)
	}
	if !oneServer {
		_, err = s.AcquireTUFLease(ctx, "a", time.Minute, false)
		wantErr(t, err, store.ErrLeaseHeld)
	}
	if err := s.ReleaseTUFLease(ctx, "b", b.Fence); err != nil {
		t.Fatal(err)
	}
	a2 := must(s.AcquireTUFLease(ctx, "a", time.Minute, false))(t)
	if a2.Fence != b.Fence+1 {
		t.Fatalf("lease after release = %+v, want fence %d", a2, b.Fence+1)
	}
	err = s.CommitTUF(ctx, store.TUFCommit{Fence: b.Fence, PrevTimestamp: 1, Timestamp: tsFile(2, "b after release")})
	wantErr(t, err, store.ErrStale)
}

// testTUFLeaseExpiry: a lease that is not renewed expires by the database's clock; then
// another holder takes it without stealing, and the old holder's write fails even though
// it still believes it leads.
func testTUFLeaseExpiry(t *testing.T, s store.Store, _ bool) {
	ctx := context.Background()
	a := must(s.AcquireTUFLease(ctx, "a", 50*time.Millisecond, false))(t)
	// Wait for the database's clock to pass the expiry: each attempt is refused until
	// then (the store cannot be given a clock here, it is the database's).
	deadline := time.Now().Add(30 * time.Second)
	var b store.TUFLease
	for {
		var err error
		b, err = s.AcquireTUFLease(ctx, "b", time.Minute, false)
		if err == nil {
			break
		}
		wantErr(t, err, store.ErrLeaseHeld)
		if time.Now().After(deadline) {
			t.Fatalf("the lease %+v did not expire", a)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b.Holder != "b" || b.Fence != a.Fence+1 {
		t.Fatalf("lease after expiry = %+v, a had %+v", b, a)
	}
	err := s.CommitTUF(ctx, store.TUFCommit{Fence: a.Fence, Timestamp: tsFile(1, "expired leader")})
	wantErr(t, err, store.ErrStale)
}

// testTUFRace: two holders steal the lease from each other and write the next version
// as fast as they can; every version is won by exactly one of them, and what is stored
// under it is the winner's.
func testTUFRace(t *testing.T, s store.Store, _ bool) {
	ctx := context.Background()
	const rounds = 25
	var mu sync.Mutex
	won := map[int64]string{} // timestamp version → holder that committed it
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, holder := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				l, err := s.AcquireTUFLease(ctx, holder, time.Minute, true)
				if err != nil {
					errs <- err
					return
				}
				cur, err := s.TUFCurrent(ctx)
				if err != nil {
					errs <- err
					return
				}
				v := cur.Version + 1
				data := []byte(fmt.Sprintf("%s-%d", holder, v))
				err = s.CommitTUF(ctx, store.TUFCommit{Fence: l.Fence, PrevTimestamp: cur.Version,
					Files: []store.TUFFile{{Role: "snapshot", Version: v, Data: data}}, Timestamp: &store.TUFFile{Role: "timestamp", Version: v, Data: data}})
				switch {
				case err == nil:
					mu.Lock()
					if prev, ok := won[v]; ok {
						mu.Unlock()
						errs <- fmt.Errorf("version %d committed by %s and %s", v, prev, holder)
						return
					}
					won[v] = holder
					mu.Unlock()
				case errors.Is(err, store.ErrStale), errors.Is(err, store.ErrConflict):
				default:
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cur := must(s.TUFCurrent(ctx))(t)
	if cur.Version != int64(len(won)) || cur.Version == 0 {
		t.Fatalf("current version %d after %d successful commits", cur.Version, len(won))
	}
	for v := int64(1); v <= cur.Version; v++ {
		want := fmt.Sprintf("%s-%d", won[v], v)
		if got := must(s.GetTUFFile(ctx, "snapshot", v))(t); !bytes.Equal(got, []byte(want)) {
			t.Errorf("snapshot %d = %q, want the winner's %q", v, got, want)
		}
	}
	if string(cur.Data) != fmt.Sprintf("%s-%d", won[cur.Version], cur.Version) {
		t.Errorf("current timestamp %q is not its winner's", cur.Data)
	}
}
