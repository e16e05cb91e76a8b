package tufhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/client"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// replica is one more omaha-server's TUF host on the fixture's database, with its own
// HTTP server and a log the test waits on.
type replica struct {
	name string
	host *Host
	srv  *httptest.Server
	log  *events
}

// events is a slog handler that hands each record's message to the test.
type events struct {
	ch chan string
}

func (e *events) Enabled(context.Context, slog.Level) bool { return true }
func (e *events) WithAttrs([]slog.Attr) slog.Handler       { return e }
func (e *events) WithGroup(string) slog.Handler            { return e }
func (e *events) Handle(_ context.Context, r slog.Record) error {
	select {
	case e.ch <- r.Message:
	default: // nobody waits for this one
	}
	return nil
}

// waitFor waits until the replica logs msg.
func (e *events) waitFor(t *testing.T, name, msg string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m := <-e.ch:
			if m == msg {
				return
			}
		case <-timeout:
			t.Fatalf("%s did not log %q within 30s", name, msg)
		}
	}
}

// replica opens a Host named name on the fixture's database with a lease of lease.
func (f *fixture) replica(t *testing.T, name string, lease time.Duration) *replica {
	t.Helper()
	ev := &events{ch: make(chan string, 64)}
	h, err := Open(context.Background(), f.storage(Config{
		Keys:          f.onlineKeys,
		InitialRoot:   f.rootData,
		Payloads:      DirPayloads(f.payloadDir),
		Now:           f.clock.Now,
		Holder:        name,
		LeaseDuration: lease,
		Logger:        slog.New(ev),
	}))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/tuf/", http.StripPrefix("/tuf", h.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &replica{name: name, host: h, srv: srv, log: ev}
}

// clientAt returns a host-side client of the repository served at base, trusting root 1.
func (f *fixture) clientAt(t *testing.T, base string) *client.Client {
	t.Helper()
	dir := t.TempDir()
	rootPath := filepath.Join(dir, "root.json")
	if err := os.WriteFile(rootPath, f.rootData, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{
		MetadataURL: base + "/tuf/",
		TrustedRoot: rootPath,
		CacheDir:    filepath.Join(dir, "cache"),
		HTTPClient:  &http.Client{Timeout: 10 * time.Second},
		Now:         f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func servedTimestamp(t *testing.T, base string) *metadata.Metadata[metadata.TimestampType] {
	t.Helper()
	resp, err := http.Get(base + "/tuf/timestamp.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET timestamp.json: %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, tuf.MaxTimestampSize+1))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := metadata.Timestamp().FromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestReplicasRace: three replicas on one PostgreSQL re-sign and refresh at once, each
// stealing the lease from the others as fast as it can; every timestamp version is
// signed by exactly one of them, the versions have no gaps, and every replica ends up
// serving the database's current timestamp.
func TestReplicasRace(t *testing.T) {
	f := newFixtureOn(t, "postgres", 1, 1)
	p := f.payload([]byte("v1"), "1.0.0")
	reps := []*replica{f.replica(t, "a", time.Minute), f.replica(t, "b", time.Minute), f.replica(t, "c", time.Minute)}
	first, err := reps[0].host.Publish(context.Background(), Upload{Targets: f.signTargets(1, tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry), f.targetKey, map[string]repo.Target{"b/p": p})})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(tuf.DefaultTimestampExpiry/2 + time.Second) // every Refresh finds the timestamp due

	const rounds = 15
	var mu sync.Mutex
	signedBy := map[int64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, len(reps))
	for _, r := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				var st State
				var err error
				if i%2 == 0 {
					st, err = r.host.Resign(context.Background())
				} else {
					var did bool
					did, err = r.host.Refresh(context.Background())
					if err == nil && !did {
						continue
					}
					st = r.host.State()
				}
				if errors.Is(err, ErrLeaseLost) {
					continue // overtaken between taking the lease and writing: nothing written
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if other, ok := signedBy[st.TimestampVersion]; ok {
					mu.Unlock()
					errs <- fmt.Errorf("timestamp version %d signed by %s and %s", st.TimestampVersion, other, r.name)
					return
				}
				signedBy[st.TimestampVersion] = r.name
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cur, err := f.db.TUFCurrent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if int(cur.Version-first.TimestampVersion) != len(signedBy) {
		t.Fatalf("current timestamp %d after %d signings from %d", cur.Version, len(signedBy), first.TimestampVersion)
	}
	for v := first.TimestampVersion + 1; v <= cur.Version; v++ {
		if signedBy[v] == "" {
			t.Errorf("version %d has no signer", v)
		}
	}
	// Every replica serves the current timestamp once its sync interval has passed.
	f.clock.Add(DefaultSyncInterval)
	for _, r := range reps {
		if got := servedTimestamp(t, r.srv.URL); got.Signed.Version != cur.Version {
			t.Errorf("%s serves timestamp %d, the database holds %d", r.name, got.Signed.Version, cur.Version)
		}
		if _, err := f.clientAt(t, r.srv.URL).Refresh(context.Background()); err != nil {
			t.Errorf("client through %s: %v", r.name, err)
		}
	}
}

// TestLeaderTakeover: the leader stops without releasing its lease (its Run is cancelled,
// as by SIGKILL); the other replica takes the lease once it expired, re-signs the
// timestamp when due, and keeps it fresh; clients through it accept the repository.
func TestLeaderTakeover(t *testing.T) {
	f := newFixtureOn(t, "postgres", 1, 1)
	const lease = time.Second
	a, b := f.replica(t, "a", lease), f.replica(t, "b", lease)
	p := f.payload([]byte("v1"), "1.0.0")
	st, err := a.host.Publish(context.Background(), Upload{Targets: f.signTargets(1, tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry), f.targetKey, map[string]repo.Target{"b/p": p})})
	if err != nil {
		t.Fatal(err)
	}
	if !a.host.Leading() {
		t.Fatal("the publishing replica does not lead")
	}

	ctxA, killA := context.WithCancel(context.Background())
	doneA := make(chan error, 1)
	go func() { doneA <- a.host.Run(ctxA, time.Minute) }()
	ctxB, stopB := context.WithCancel(context.Background())
	doneB := make(chan error, 1)
	go func() { doneB <- b.host.Run(ctxB, time.Minute) }()
	defer func() {
		stopB()
		<-doneB
	}()

	// While a lives, b follows: a's Run renews the lease, b's Refresh finds it held.
	if did, err := b.host.Refresh(context.Background()); did || err != nil || b.host.Leading() {
		t.Fatalf("b Refresh while a leads = %v, %v (leading %v)", did, err, b.host.Leading())
	}

	killA()
	if err := <-doneA; !errors.Is(err, context.Canceled) {
		t.Fatalf("a Run = %v", err)
	}
	killed := time.Now()
	// The timestamp is now due; b must take the lease and sign it.
	f.clock.Add(tuf.DefaultTimestampExpiry/2 + time.Second)
	b.log.waitFor(t, "b", "tuf signing lease taken")
	t.Logf("b took the lease %s after a stopped (lease %s)", time.Since(killed).Round(time.Millisecond), lease)
	b.log.waitFor(t, "b", "tuf timestamp signed")
	got := b.host.State()
	if got.TimestampVersion != st.TimestampVersion+1 || got.SnapshotVersion != st.SnapshotVersion {
		t.Fatalf("after takeover: %+v, before %+v", got, st)
	}
	if _, err := f.clientAt(t, b.srv.URL).Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	// And again half a validity later: b keeps it fresh.
	f.clock.Add(tuf.DefaultTimestampExpiry/2 + time.Second)
	b.log.waitFor(t, "b", "tuf timestamp signed")
	c := f.clientAt(t, b.srv.URL)
	r, err := c.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.TimestampVersion < st.TimestampVersion+2 {
		t.Fatalf("client sees timestamp %d", r.TimestampVersion)
	}
	// a, restarted, follows and serves what b signed.
	if did, err := a.host.Refresh(context.Background()); did || err != nil || a.host.Leading() {
		t.Fatalf("restarted a Refresh = %v, %v (leading %v)", did, err, a.host.Leading())
	}
	if _, err := f.clientAt(t, a.srv.URL).Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestPublishThroughFollower: targets and a root published through replicas that do not
// hold the lease are served by all of them within the sync interval, and before it a
// lagging replica still serves the files the new timestamp names.
func TestPublishThroughFollower(t *testing.T) {
	f := newFixtureOn(t, "postgres", 1, 1)
	reps := []*replica{f.replica(t, "a", time.Minute), f.replica(t, "b", time.Minute), f.replica(t, "c", time.Minute)}
	ctx := context.Background()
	exp := tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry)
	p1 := f.payload([]byte("v1"), "1.0.0")
	if _, err := reps[0].host.Publish(ctx, Upload{Targets: f.signTargets(1, exp, f.targetKey, map[string]repo.Target{"b/1.0.0/p": p1})}); err != nil {
		t.Fatal(err)
	}
	if did, err := reps[0].host.Refresh(ctx); did || err != nil || !reps[0].host.Leading() {
		t.Fatalf("a Refresh = %v, %v (leading %v)", did, err, reps[0].host.Leading())
	}
	for _, r := range reps[1:] {
		if did, err := r.host.Refresh(ctx); did || err != nil || r.host.Leading() {
			t.Fatalf("%s Refresh = %v, %v (leading %v)", r.name, did, err, r.host.Leading())
		}
	}
	clients := map[string]*client.Client{}
	for _, r := range reps {
		clients[r.name] = f.clientAt(t, r.srv.URL)
		if _, err := clients[r.name].Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Targets 2 through b, a follower.
	p2 := f.payload([]byte("v2"), "2.0.0")
	st, err := reps[1].host.Publish(ctx, Upload{Targets: f.signTargets(2, exp, f.targetKey, map[string]repo.Target{"b/1.0.0/p": p1, "b/2.0.0/p": p2})})
	if err != nil {
		t.Fatal(err)
	}
	if st.TargetsVersion != 2 || st.TimestampVersion != 2 || !reps[1].host.Leading() {
		t.Fatalf("publish through b: %+v (b leading %v)", st, reps[1].host.Leading())
	}
	// a signs nothing now: it lost the lease to b.
	if did, err := reps[0].host.Refresh(ctx); did || err != nil || reps[0].host.Leading() {
		t.Fatalf("a Refresh after b published = %v, %v (leading %v)", did, err, reps[0].host.Leading())
	}
	// c has not read the database since: it serves timestamp 1 still, but the files of
	// timestamp 2 on request.
	if got := servedTimestamp(t, reps[2].srv.URL); got.Signed.Version != 1 {
		t.Fatalf("c serves timestamp %d within its sync interval", got.Signed.Version)
	}
	for _, path := range []string{"2.snapshot.json", "2.targets.json"} {
		resp, err := http.Get(reps[2].srv.URL + "/tuf/" + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("c: GET %s: %s", path, resp.Status)
		}
	}
	f.clock.Add(DefaultSyncInterval)
	for _, r := range reps {
		res, err := clients[r.name].Refresh(ctx)
		if err != nil {
			t.Fatalf("client through %s: %v", r.name, err)
		}
		if res.TargetsVersion != 2 {
			t.Fatalf("client through %s: %+v", r.name, res)
		}
		if _, err := res.Lookup("b/2.0.0/p"); err != nil {
			t.Fatalf("client through %s: %v", r.name, err)
		}
	}

	// A root rotation (publish-root) through c.
	_, root2 := f.rotate(repo.RootChange{}, f.rootKeys[0])
	if st, err := reps[2].host.Publish(ctx, Upload{Roots: [][]byte{root2}}); err != nil || st.RootVersion != 2 {
		t.Fatalf("publish root through c = %+v, %v", st, err)
	}
	f.clock.Add(DefaultSyncInterval)
	for _, r := range reps {
		res, err := clients[r.name].Refresh(ctx)
		if err != nil || res.RootVersion != 2 {
			t.Fatalf("client through %s after the root rotation: %+v, %v", r.name, res, err)
		}
		if st := r.host.State(); st.RootVersion != 2 {
			t.Fatalf("%s state %+v", r.name, st)
		}
	}
	// A stale upload through a, which had not seen the new targets when it was signed,
	// is refused against the database's state, not a's.
	if _, err := reps[0].host.Publish(ctx, Upload{Targets: f.signTargets(2, exp, f.targetKey, map[string]repo.Target{"b/x": p1})}); !errors.Is(err, repo.ErrVersion) {
		t.Fatalf("a second targets 2 through a = %v, want ErrVersion", err)
	}
}

// TestStaleLeader: a replica that took the lease and is overtaken before it writes (it
// paused, say) cannot write; a re-sign reports ErrLeaseLost and leaves the other's
// timestamp current, and a publish overtaken once reads the new state and succeeds.
func TestStaleLeader(t *testing.T) {
	f := newFixtureOn(t, "postgres", 1, 1)
	a, b := f.replica(t, "a", time.Minute), f.replica(t, "b", time.Minute)
	ctx := context.Background()
	exp := tuf.Expiry(f.clock.Now(), tuf.DefaultTargetsExpiry)
	p := f.payload([]byte("v1"), "1.0.0")
	if _, err := a.host.Publish(ctx, Upload{Targets: f.signTargets(1, exp, f.targetKey, map[string]repo.Target{"b/p": p})}); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(tuf.DefaultTimestampExpiry/2 + time.Second)

	var bState State
	a.host.beforeCommit = func() {
		a.host.beforeCommit = nil
		var err error
		if bState, err = b.host.Resign(ctx); err != nil {
			t.Error(err)
		}
	}
	did, err := a.host.Refresh(ctx)
	if did || !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("overtaken Refresh = %v, %v; want ErrLeaseLost", did, err)
	}
	if a.host.Leading() {
		t.Fatal("a still believes it leads")
	}
	cur, err := f.db.TUFCurrent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bState.TimestampVersion != 2 || cur.Version != 2 {
		t.Fatalf("current %d, b signed %+v", cur.Version, bState)
	}
	if got := servedTimestamp(t, b.srv.URL); got.Signed.Version != 2 {
		t.Fatalf("b serves %d", got.Signed.Version)
	}

	// A publish through a, overtaken once by b's re-sign, tries again on the new state.
	a.host.beforeCommit = func() {
		a.host.beforeCommit = nil
		if _, err := b.host.Resign(ctx); err != nil {
			t.Error(err)
		}
	}
	st, err := a.host.Publish(ctx, Upload{Targets: f.signTargets(2, exp, f.targetKey, map[string]repo.Target{"b/p": p, "b/q": f.payload([]byte("v2"), "2.0.0")})})
	if err != nil {
		t.Fatal(err)
	}
	if st.TargetsVersion != 2 || st.TimestampVersion != 4 || st.SnapshotVersion != 4 {
		t.Fatalf("publish after being overtaken: %+v", st)
	}
	if _, err := f.clientAt(t, b.srv.URL).Refresh(ctx); err != nil {
		t.Fatal(err)
	}
}
