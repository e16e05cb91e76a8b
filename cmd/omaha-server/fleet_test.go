package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/payloads/s3test"
	"github.com/switchyard-os/switchyard/omaha-server/policy"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/pgtest"
	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/partitions/slots"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/payload"
	sytuf "github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
	"github.com/switchyard-os/switchyard/update-engine/disk"
)

// The fleet test's timings: a short lease and a short timestamp validity, so that a
// takeover and a re-sign by the new leader happen within the test.
const (
	fleetLease           = 2 * time.Second
	fleetTimestampExpiry = 2 * time.Minute // the shortest tufhost accepts
	fleetFrom            = "4000.0.0"
	fleetTo              = "4001.0.0"
	fleetBoard           = "amd64-usr"
	fleetCap             = 2 // grants per period of the capped group
	fleetCappedHosts     = 6 // hosts of the capped group checking in
)

// TestFleet runs omaha-server as a fleet: PostgreSQL, a real S3 server and three replicas
// as separate processes of the built binary, each with its own data directory (nothing
// shared but the database and the bucket) and on its own port (no sticky routing: every
// step picks the replica). A release published through replica 1 is checked for through
// replica 2 and downloaded from replica 3 by update-engine (the built binary) on a disk
// image; the TUF signing leader is killed with SIGKILL and another takes over and keeps the
// timestamp fresh past the old one's expiry; a second host updates through the survivors;
// a capped rollout grants exactly the cap across replicas; and after all three restart,
// the releases, instances, token, TUF versions, payloads and the cap's count are all there.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("the fleet test starts PostgreSQL, an S3 server and three server processes, and waits out a TUF timestamp validity of 2 minutes (about two and a half minutes in all)")
	}
	ctx := t.Context()
	pg, err := pgtest.Start(ctx, pgtest.Options{})
	if errors.Is(err, pgtest.ErrNoPostgres) {
		t.Skip("SKIPPING the fleet test: " + err.Error() + " — run `apt-get install postgresql` (or `make deps`)")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	dbURL, err := pg.CreateDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s3 := s3test.Start(t)
	bucket := s3.CreateBucket("fleet")
	f := &fleet{t: t, dir: t.TempDir(), db: dbURL, keys: makeTUFKeys(t), timestamps: map[int64][32]byte{},
		payloadStore: "s3://" + bucket + "/payloads?endpoint=" + url.QueryEscape(s3.Endpoint) + "&region=" + s3test.Region}
	f.build()

	// An admin token, created with the binary on the database every replica shares.
	out, err := exec.CommandContext(ctx, f.serverBin, "token", "create", "--db", dbURL, "--role", "admin", "--name", "fleet").CombinedOutput()
	if err != nil {
		t.Fatalf("omaha-server token create: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	f.token = lines[len(lines)-1]

	// Three replicas, started at once on the empty database (migrations and the TUF
	// repository's creation race). Replica 2's offers name replica 3 for payloads.
	for i := range f.replicas {
		f.replicas[i] = &replica{n: i + 1, addr: freeAddr(t), dataDir: filepath.Join(f.dir, fmt.Sprintf("replica%d", i+1))}
	}
	f.startAll()

	// Replica 1: the release (payload on S3, TUF targets), the channel and two groups.
	r1 := f.admin(1)
	rel := f.makeRelease()
	must(t)(r1.CreateApp(ctx, omaha.FlatcarAppID, "Flatcar Container Linux"))
	must(t)(r1.Upload(ctx, store.FlatcarAppID, adminapi.ReleaseMetadata{Version: fleetTo, Board: fleetBoard, FileName: "update.sy",
		Size: int64(len(rel.payload))}, rel.targets, bytes.NewReader(rel.payload)))
	must(t)(r1.CreateChannel(ctx, store.FlatcarAppID, "stable"))
	must(t)(r1.SetChannel(ctx, store.FlatcarAppID, "stable", fleetBoard, fleetTo))
	ch := "stable"
	must(t)(r1.CreateGroup(ctx, store.FlatcarAppID, adminapi.GroupInput{Name: "stable", Track: &ch, Channel: &ch}))
	capped := "capped"
	g := must1[store.Group](t)(r1.CreateGroup(ctx, store.FlatcarAppID, adminapi.GroupInput{Name: capped, Track: &capped, Channel: &ch}))
	must(t)(r1.SetPolicy(ctx, store.FlatcarAppID, capped, policy.Policy{MaxPerPeriod: fleetCap, Period: policy.Duration(time.Hour)}, g.Version))
	// Every replica serves the targets metadata replica 1 published.
	var targets struct {
		Signed struct {
			Version float64 `json:"version"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(rel.targets, &targets); err != nil {
		t.Fatal(err)
	}
	for _, r := range f.replicas {
		f.waitFor(fmt.Sprintf("replica %d serves targets version %v", r.n, targets.Signed.Version), 10*time.Second, func() error {
			if v := f.metric(r, "switchyard_tuf_metadata_version", `role="targets"`); v != targets.Signed.Version {
				return fmt.Errorf("targets version %v", v)
			}
			return nil
		})
	}

	// Host 1 checks in with replica 2 and downloads from replica 3.
	host1 := f.newHost("host1", "11111111111111111111111111111111")
	packagesBefore := [3]float64{}
	for i, r := range f.replicas {
		packagesBefore[i] = f.packageRequests(r)
	}
	host1.update(f.replicas[1])
	if got := f.packageRequests(f.replicas[2]) - packagesBefore[2]; got == 0 {
		t.Error("replica 3 served no payload request to host 1")
	}
	for _, i := range []int{0, 1} {
		if got := f.packageRequests(f.replicas[i]) - packagesBefore[i]; got != 0 {
			t.Errorf("replica %d served %v payload requests; host 1 was to download from replica 3", i+1, got)
		}
	}
	// Replica 1 reads what host 1 reported through replica 2.
	if got := f.events(r1, host1.machineID); !slicesEqual(got, []string{"13/1", "14/1", "3/1"}) {
		t.Errorf("host 1's events through replica 1: %v", got)
	}

	// The TUF leader dies with SIGKILL; another leads within the lease and keeps the
	// timestamp fresh past the expiry of every timestamp the dead one signed.
	leader := f.waitLeader(f.replicas[:], 10*time.Second)
	tsBefore := 0
	for _, r := range f.replicas {
		tsBefore = max(tsBefore, int(f.timestamp(r).Version))
	}
	f.t.Logf("replica %d leads; killing it (timestamp version %d)", leader.n, tsBefore)
	leader.kill()
	killedAt := time.Now()
	var survivors []*replica
	for _, r := range f.replicas {
		if r != leader {
			survivors = append(survivors, r)
		}
	}
	// The lease lapses after fleetLease; the next round (a quarter lease later) takes it.
	// The deadline adds slack for two shared cores, and the time taken is logged.
	newLeader := f.waitLeader(survivors, fleetLease+fleetLease/4+5*time.Second)
	f.t.Logf("replica %d leads %v after the kill (lease %v)", newLeader.n, time.Since(killedAt).Round(time.Millisecond), fleetLease)

	// While the old timestamps run out: host 2 updates through the survivors (it checks in
	// with one whose offers name a live replica for the payload), and the capped group's
	// hosts check in through both survivors at once: exactly the cap are granted.
	host2 := f.newHost("host2", "22222222222222222222222222222222")
	checkIn := survivors[0]
	if leader.n == 3 {
		checkIn = f.replicas[0] // replica 2's offers name the dead replica 3
	}
	host2.update(checkIn)
	grants := f.checkInCapped(survivors, 0, fleetCappedHosts)
	if grants != fleetCap {
		t.Errorf("%d of %d hosts of a group capped at %d per hour were granted the update", grants, fleetCappedHosts, fleetCap)
	}
	machines := []string{host1.machineID, host2.machineID}
	for i := range fleetCappedHosts {
		machines = append(machines, cappedMachine(i))
	}
	sort.Strings(machines)
	f.checkInstances(survivors, machines, grants)

	f.waitFor("a fresh timestamp after the old ones expired", fleetTimestampExpiry+time.Minute, func() error {
		if since := time.Since(killedAt); since <= fleetTimestampExpiry+time.Second {
			return fmt.Errorf("only %v since the kill", since.Round(time.Second))
		}
		for _, r := range survivors {
			ts := f.timestamp(r)
			if !ts.Expires.After(time.Now()) || ts.Version <= int64(tsBefore) {
				return fmt.Errorf("replica %d serves timestamp version %d expiring %v (version before the kill %d)", r.n, ts.Version, ts.Expires, tsBefore)
			}
		}
		return nil
	})

	// All three stop, and three start again on the same database and bucket.
	tsSeen := f.maxTimestamp()
	for _, r := range f.replicas {
		r.stop()
	}
	f.startAll()
	for _, r := range f.replicas {
		a := f.admin(r.n) // the token from before the restart
		rels := must1[[]store.Release](t)(a.ListReleases(ctx, store.FlatcarAppID))
		if len(rels) != 1 || rels[0].Version != fleetTo {
			t.Errorf("replica %d lists releases %+v after the restart", r.n, rels)
		}
		if ts := f.timestamp(r); ts.Version < tsSeen {
			t.Errorf("replica %d serves timestamp version %d after the restart; %d was served before", r.n, ts.Version, tsSeen)
		}
		if v := f.metric(r, "switchyard_tuf_metadata_version", `role="targets"`); v != targets.Signed.Version {
			t.Errorf("replica %d serves targets version %v after the restart, want %v", r.n, v, targets.Signed.Version)
		}
		resp, err := http.Get("http://" + r.addr + "/packages/" + url.PathEscape(store.FlatcarAppID) + "/" + fleetBoard + "/" + fleetTo + "/update.sy")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, int64(len(rel.payload))+1))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, rel.payload) {
			t.Errorf("replica %d serves the payload after the restart: %d, %d bytes of %d", r.n, resp.StatusCode, len(body), len(rel.payload))
		}
	}
	f.checkInstances(f.replicas[:], machines, grants)
	// The cap's count survived: one more host of the capped group gets nothing.
	if more := f.checkInCapped(f.replicas[:], fleetCappedHosts, 1); more != 0 {
		t.Errorf("a host of the capped group was granted after the restart: the cap's count was lost")
	}
	// And a third host updates end to end after the restart.
	f.newHost("host3", "33333333333333333333333333333333").update(f.replicas[0])
}

// fleet is the test's world: the binaries, the shared database and bucket, the replicas.
type fleet struct {
	t                       *testing.T
	dir                     string
	serverBin, engineBin    string
	db, payloadStore, token string
	keys                    tufKeys
	replicas                [3]*replica
	rel                     *fleetRelease

	mu         sync.Mutex
	timestamps map[int64][32]byte // every timestamp served, by version: never two different ones
}

// build compiles omaha-server and update-engine once, into the test's directory.
func (f *fleet) build() {
	f.t.Helper()
	bin := filepath.Join(f.dir, "bin")
	cmd := exec.CommandContext(f.t.Context(), "go", "build", "-o", bin+"/", "./cmd/omaha-server", "./cmd/update-engine")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		f.t.Fatalf("go build: %v\n%s", err, out)
	}
	f.serverBin, f.engineBin = filepath.Join(bin, "omaha-server"), filepath.Join(bin, "update-engine")
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// replica is one omaha-server process.
type replica struct {
	f       *fleet
	n       int // 1, 2, 3
	addr    string
	dataDir string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// startAll starts the three replicas at once and waits until each answers /healthz.
func (f *fleet) startAll() {
	for _, r := range f.replicas {
		r.f = f
		r.start()
	}
	for _, r := range f.replicas {
		r.waitReady()
	}
}

func (r *replica) args() []string {
	f := r.f
	a := []string{"serve", "--listen", r.addr, "--data-dir", r.dataDir, "--db", f.db, "--payload-store", f.payloadStore,
		"--tuf-store", "db", "--tuf-root", f.keys.rootFile,
		"--tuf-key", filepath.Join(f.keys.dir, "snapshot.key"), "--tuf-key", filepath.Join(f.keys.dir, "timestamp.key"),
		"--tuf-passphrase-file", f.keys.passFile,
		"--tuf-lease", fleetLease.String(), "--tuf-sync-interval", "100ms", "--tuf-resign-interval", "500ms",
		"--tuf-timestamp-expiry", fleetTimestampExpiry.String(),
		"--catalog-ttl", "200ms", "--omaha-rate", "0", "--no-dashboard"}
	if r.n == 2 {
		return append(a, "--public-url", "http://"+r.addr, "--codebase-url", "http://"+f.replicas[2].addr+"/packages")
	}
	return append(a, "--public-url", "http://"+r.addr)
}

// start starts the replica's process; its log goes to a file the test prints on failure.
func (r *replica) start() {
	t := r.f.t
	t.Helper()
	r.logPath = filepath.Join(r.f.dir, fmt.Sprintf("replica%d-%d.log", r.n, time.Now().UnixNano()))
	log, err := os.Create(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(r.f.serverBin, r.args()...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+s3test.AccessKey, "AWS_SECRET_ACCESS_KEY="+s3test.SecretKey,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(done) }()
	r.cmd, r.done = cmd, done
	path := r.logPath
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			b, _ := os.ReadFile(path)
			t.Logf("replica %d's log (%s):\n%s", r.n, path, lastLinesOf(string(b), 40))
		}
	})
}

// waitReady waits until the replica answers /healthz, failing when it exits.
func (r *replica) waitReady() {
	t := r.f.t
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-r.done:
			b, _ := os.ReadFile(r.logPath)
			t.Fatalf("replica %d exited at start:\n%s", r.n, lastLinesOf(string(b), 30))
		default:
		}
		resp, err := http.Get("http://" + r.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %d did not become ready: %v", r.n, err)
		}
		select {
		case <-r.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill ends the process with SIGKILL and waits for it.
func (r *replica) kill() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
	r.cmd = nil
}

// stop ends the process with SIGTERM (a clean shutdown) and waits for it.
func (r *replica) stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		r.f.t.Errorf("replica %d did not stop within 30s of SIGTERM", r.n)
		r.cmd.Process.Signal(syscall.SIGKILL)
		<-r.done
	}
	r.cmd = nil
}

func lastLinesOf(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (f *fleet) admin(n int) *adminclient.Client {
	f.t.Helper()
	c, err := adminclient.New("http://"+f.replicas[n-1].addr, f.token, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds, failing the test after timeout with its last error.
func (f *fleet) waitFor(what string, timeout time.Duration, cond func() error) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("waiting for %s: %v", what, err)
		}
		select {
		case <-f.t.Context().Done():
			f.t.Fatal(f.t.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// scrape returns the replica's /metrics text.
func (f *fleet) scrape(r *replica) string {
	f.t.Helper()
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		f.t.Fatalf("replica %d /metrics: %d, %v", r.n, resp.StatusCode, err)
	}
	return string(b)
}

// metric sums the samples of name whose labels contain every one of labels.
func (f *fleet) metric(r *replica, name string, labels ...string) float64 {
	return sumMetric(f.scrape(r), name, labels...)
}

func sumMetric(text, name string, labels ...string) float64 {
	var sum float64
next:
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// packageRequests is how many payload requests the replica answered.
func (f *fleet) packageRequests(r *replica) float64 {
	return f.metric(r, "switchyard_omaha_server_http_requests_total", `route="/packages/`)
}

// waitLeader waits until exactly one of rs reports holding the signing lease.
func (f *fleet) waitLeader(rs []*replica, timeout time.Duration) *replica {
	f.t.Helper()
	var leader *replica
	f.waitFor("one TUF signing leader", timeout, func() error {
		var leaders []int
		leader = nil
		for _, r := range rs {
			if f.metric(r, "switchyard_tuf_signing_leader") == 1 {
				leaders = append(leaders, r.n)
				leader = r
			}
		}
		if len(leaders) != 1 {
			return fmt.Errorf("replicas leading: %v", leaders)
		}
		return nil
	})
	return leader
}

type servedTimestamp struct {
	Version int64
	Expires time.Time
}

// timestamp fetches the replica's timestamp.json, records it, and fails the test when
// another replica served different bytes under the same version (a fork).
func (f *fleet) timestamp(r *replica) servedTimestamp {
	f.t.Helper()
	resp, err := http.Get("http://" + r.addr + "/tuf/timestamp.json")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		f.t.Fatalf("replica %d /tuf/timestamp.json: %d, %v", r.n, resp.StatusCode, err)
	}
	var md struct {
		Signed struct {
			Type    string    `json:"_type"`
			Version int64     `json:"version"`
			Expires time.Time `json:"expires"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &md); err != nil || md.Signed.Type != "timestamp" {
		f.t.Fatalf("replica %d /tuf/timestamp.json: %v\n%s", r.n, err, b)
	}
	sum := sha256.Sum256(b)
	f.mu.Lock()
	defer f.mu.Unlock()
	if prev, ok := f.timestamps[md.Signed.Version]; ok && prev != sum {
		f.t.Fatalf("two different timestamps with version %d (replica %d served the second)", md.Signed.Version, r.n)
	}
	f.timestamps[md.Signed.Version] = sum
	return servedTimestamp{Version: md.Signed.Version, Expires: md.Signed.Expires}
}

func (f *fleet) maxTimestamp() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var m int64
	for v := range f.timestamps {
		m = max(m, v)
	}
	return m
}

// fleetRelease is the signed payload of fleetTo and the targets metadata pinning it.
type fleetRelease struct {
	image, payload, targets []byte
	keyDir                  string // the accepted payload public key
}

// makeRelease builds and signs the payload from a generated USR image and signs targets
// metadata pinning it, with the custom fields hosts check.
func (f *fleet) makeRelease() *fleetRelease {
	t, ctx := f.t, f.t.Context()
	rel := &fleetRelease{image: fleetImage(int(layout.Small().USR), 42), keyDir: filepath.Join(f.dir, "payload-keys")}
	payK, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := payK.Public().MarshalPEM()
	if err := os.MkdirAll(rel.keyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rel.keyDir, "release.pem"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	pp := filepath.Join(f.dir, "update.sy")
	out, err := os.Create(pp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := payload.Build(ctx, bytes.NewReader(rel.image), int64(len(rel.image)), out,
		payload.BuildConfig{Version: fleetTo, Board: fleetBoard, ChunkSize: 128 << 10, TempDir: t.TempDir()})
	out.Close()
	if err != nil {
		t.Fatal(err)
	}
	ps, err := keys.NewSigner(payK)
	if err != nil {
		t.Fatal(err)
	}
	if err := payload.SignFile(ctx, pp, ps); err != nil {
		t.Fatal(err)
	}
	if rel.payload, err = os.ReadFile(pp); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(filepath.Join(f.dir, "tufrepo"), f.keys.rootData)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(rel.payload)
	if err := r.AddTarget(fleetBoard+"/"+fleetTo+"/update.sy", repo.Target{Length: int64(len(rel.payload)), SHA256: sum,
		Custom: sytuf.Custom{Version: fleetTo, Board: fleetBoard, Channels: []string{"stable"}, ReleaseCounter: 4001,
			PartitionSize: int64(m.PartitionSize), PartitionSHA256: hex.EncodeToString(m.PartitionSHA256[:])}}); err != nil {
		t.Fatal(err)
	}
	if rel.targets, err = r.SignTargets(sytuf.Expiry(time.Now(), sytuf.DefaultTargetsExpiry), f.keys.targets); err != nil {
		t.Fatal(err)
	}
	f.rel = rel
	return rel
}

// fleetImage is a compressible partition image with some structure.
func fleetImage(size int, seed uint64) []byte {
	rnd := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, size)
	words := [][]byte{[]byte("usr/lib/systemd/"), []byte("libc.so.6"), []byte("\x7fELF\x02\x01\x01"), []byte("\x00\x00\x00\x00"), []byte(" OK ")}
	for i := 0; i < len(b); {
		i += copy(b[i:], words[rnd.IntN(len(words))])
		if rnd.IntN(4) == 0 && i < len(b) {
			b[i] = byte(rnd.IntN(256))
			i++
		}
	}
	return b
}

// fleetHost is a host: a Flatcar-layout disk image running fleetFrom on USR-A, and its
// update-engine configuration.
type fleetHost struct {
	f         *fleet
	dir       string
	machineID string
	disk      string
}

func (f *fleet) newHost(name, machineID string) *fleetHost {
	f.t.Helper()
	h := &fleetHost{f: f, dir: filepath.Join(f.dir, name), machineID: machineID}
	h.disk = filepath.Join(h.dir, "disk.img")
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := layout.WriteFile(f.t.Context(), h.disk, layout.Options{Sizes: layout.Small()},
		bytes.NewReader(fleetImage(int(layout.Small().USR), 7))); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.dir, "boot_id"), []byte("0c288430-2504-4db4-913a-000000000001\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return h
}

// update runs update-engine -once against replica r and checks that the update was
// verified, written to USR-B and flipped, and that USR-A was not touched.
func (h *fleetHost) update(r *replica) {
	t := h.f.t
	t.Helper()
	conf := strings.Join([]string{
		"SERVER=http://" + r.addr + "/v1/update/",
		"ALLOW_PLAIN_HTTP=true",
		"GROUP=stable",
		"FLATCAR_RELEASE_VERSION=" + fleetFrom,
		"FLATCAR_RELEASE_BOARD=" + fleetBoard,
		"MACHINE_ID=" + h.machineID,
		"BOOT_ID_FILE=" + filepath.Join(h.dir, "boot_id"),
		"TUF_ROOT=" + h.f.keys.rootFile,
		"PAYLOAD_KEYS=" + h.f.rel.keyDir,
		"STATE_DIR=" + filepath.Join(h.dir, "state"),
		"CONTROL_SOCKET=" + filepath.Join(h.dir, "ue.sock"),
		"DISK=" + h.disk,
		"ACTIVE_PARTITION=USR-A",
		"REBOOT_STRATEGY=off",
		"HEALTH_MIN_UPTIME=0s",
		"DBUS=off",
	}, "\n") + "\n"
	confPath := filepath.Join(h.dir, "update.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	activeBefore := h.partitionHash(layout.NumUSRA)
	// update-engine retries what fails; a bound makes a broken fleet fail the test soon.
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, h.f.engineBin, "-config", confPath, "-once").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "updated to "+fleetTo+" on USR-B") {
		t.Fatalf("%s: update-engine -once through replica %d: %v\n%s", filepath.Base(h.dir), r.n, err, out)
	}
	if h.partitionHash(layout.NumUSRA) != activeBefore {
		t.Fatalf("%s: the active partition changed", filepath.Base(h.dir))
	}
	if got := h.partitionHash(layout.NumUSRB); got != sha256.Sum256(h.f.rel.image) {
		t.Fatalf("%s: USR-B does not hold the new image", filepath.Base(h.dir))
	}
	b := h.slot(layout.NumUSRB)
	if b.Priority != 2 || b.Tries != 1 || b.Successful {
		t.Errorf("%s: USR-B after the flip: %+v", filepath.Base(h.dir), b)
	}
}

// partitionHash hashes USR partition n (as big as the image: the partition is exactly it).
func (h *fleetHost) partitionHash(n int) [32]byte {
	t := h.f.t
	t.Helper()
	active := "USR-B"
	if n == layout.NumUSRB {
		active = "USR-A"
	}
	d := &disk.Disk{Path: h.disk, Active: active}
	win, err := d.OpenTarget(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	defer win.Close()
	hash := sha256.New()
	if _, err := io.Copy(hash, io.NewSectionReader(win, 0, win.Size())); err != nil {
		t.Fatal(err)
	}
	return [32]byte(hash.Sum(nil))
}

func (h *fleetHost) slot(n int) slots.Slot {
	t := h.f.t
	t.Helper()
	f, err := os.Open(h.disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	tb, err := gpt.Read(t.Context(), f, fi.Size(), 512)
	if err != nil {
		t.Fatal(err)
	}
	s, err := slots.Get(tb, n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func cappedMachine(i int) string { return fmt.Sprintf("c%031d", i) }

// checkInCapped sends the update checks of n hosts of the capped group, numbered from
// first, all at once and spread over the replicas rs, and returns how many were
// granted the update.
func (f *fleet) checkInCapped(rs []*replica, first, n int) int {
	f.t.Helper()
	type result struct {
		granted bool
		err     error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for i := first; i < first+n; i++ {
		r := rs[i%len(rs)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := omaha.NewUpdateCheckRequest(omaha.Host{Version: fleetFrom, Track: "capped", Board: fleetBoard,
				MachineID: cappedMachine(i), BootID: "{0c288430-2504-4db4-913a-000000000002}"}, false)
			resp, err := omaha.Send(f.t.Context(), http.DefaultClient, "http://"+r.addr+"/v1/update/", req, omaha.Limits{})
			if err != nil {
				results <- result{err: fmt.Errorf("host %d through replica %d: %w", i, r.n, err)}
				return
			}
			app := resp.App(omaha.FlatcarAppID)
			results <- result{granted: app != nil && app.UpdateCheck != nil && app.UpdateCheck.Status == omaha.UpdateStatusOK}
		}()
	}
	wg.Wait()
	close(results)
	grants := 0
	for res := range results {
		if res.err != nil {
			f.t.Fatal(res.err)
		}
		if res.granted {
			grants++
		}
	}
	return grants
}

// checkInstances checks that every replica lists exactly the hosts that checked in, that
// its instance gauge counts them, and that the capped group holds grants granted hosts.
func (f *fleet) checkInstances(rs []*replica, machines []string, grants int) {
	f.t.Helper()
	ctx := f.t.Context()
	for _, r := range rs {
		a := f.admin(r.n)
		ins := must1[[]store.Instance](f.t)(a.ListInstances(ctx, store.InstanceFilter{AppID: store.FlatcarAppID}))
		var got []string
		for _, in := range ins {
			got = append(got, in.MachineID)
		}
		sort.Strings(got)
		if !slicesEqual(got, machines) {
			f.t.Errorf("replica %d lists instances %v, want %v", r.n, got, machines)
		}
		granted := must1[[]store.Instance](f.t)(a.ListInstances(ctx, store.InstanceFilter{AppID: store.FlatcarAppID, Group: "capped", Status: store.StatusUpdateGranted}))
		if len(granted) != grants {
			f.t.Errorf("replica %d lists %d granted hosts in the capped group, want %d", r.n, len(granted), grants)
		}
		if v := f.metric(r, "switchyard_omaha_server_instances"); v != float64(len(machines)) {
			f.t.Errorf("replica %d's instance gauge sums to %v, want %d", r.n, v, len(machines))
		}
	}
}

// events returns the events a replica lists for a host, oldest first, as "type/result".
func (f *fleet) events(a *adminclient.Client, machineID string) []string {
	f.t.Helper()
	evs := must1[[]store.Event](f.t)(a.ListEvents(f.t.Context(), store.FlatcarAppID, machineID))
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].At.Before(evs[j].At) })
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%d/%d", e.Type, e.Result))
	}
	return out
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// must fails the test on a call's error.
func must(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// must1 returns a call's value, failing the test on its error.
func must1[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
