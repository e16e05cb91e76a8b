package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
	"github.com/switchyard-os/switchyard/omaha-server/tufhost"
	"github.com/switchyard-os/switchyard/partitions/gpt"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/partitions/slots"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/payload"
	sytuf "github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
	"github.com/switchyard-os/switchyard/update-engine/disk"
	"github.com/switchyard-os/switchyard/update-engine/state"
)

const (
	fromVersion = "4000.0.0"
	toVersion   = "4001.0.0"
	board       = "amd64-usr"
	machineID   = "0123456789abcdef0123456789abcdef"
)

// usrImage is a compressible partition image with some structure.
func usrImage(size int, seed uint64) []byte {
	rnd := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, size)
	words := [][]byte{[]byte("usr/lib/systemd/"), []byte("libc.so.6"), []byte("\x7fELF\x02\x01\x01"), []byte("\x00\x00\x00\x00\x00\x00"), []byte(" OK ")}
	for i := 0; i < len(b); {
		i += copy(b[i:], words[rnd.IntN(len(words))])
		if rnd.IntN(4) == 0 && i < len(b) {
			b[i] = byte(rnd.IntN(256))
			i++
		}
	}
	return b
}

// world is a real omaha-server (SQLite store, TUF hosting) over loopback TLS, a signed
// release on it, and a Flatcar-layout disk image for the host.
type world struct {
	t        testing.TB
	to       string // the offered version
	dir      string
	srv      *httptest.Server
	admin    *adminclient.Client
	tuf      *tufhost.Host
	caFile   string
	rootFile string
	keyFile  string // the accepted payload public key
	diskPath string
	image    []byte // the new USR image
	payload  []byte
	served   atomic.Int64 // payload bytes the server sent
	mu       sync.Mutex
	// tamperAt, when >= 0, is a payload offset whose byte is flipped on the wire.
	tamperAt int64
	onSent   func(total int64)

	targetsSigner signature.Signer
	bootID        int
	// For publishing more (delta_test.go): the payload key, the TUF working directory
	// and the TUF clock.
	payKey  *keys.PrivateKey
	tufRepo *repo.Repo
	tufNow  time.Time
}

type worldOptions struct {
	usrSize     int64 // partition size (and image size)
	chunk       int64
	tufNow      time.Time    // the server's clock for TUF (zero: now)
	noisy       bool         // half of the image's 4 KiB blocks are random (a bigger payload)
	compression payload.Type // 0: the default (xz)
	// prebuilt, when set, is a signed payload file and its public key (PEM) to publish
	// instead of building one; its manifest gives the version.
	prebuilt, prebuiltKey string
	// reportVersion, when set, replaces the version hosts report before omaha-server sees
	// it: the server then offers updates as if the host ran that version (a server that
	// offers a downgrade).
	reportVersion string
	// fleetLock, when set, is mounted as the server's FleetLock endpoint.
	fleetLock http.Handler
	// diskDir, when set, is where the disk image lives (default: the world's directory).
	diskDir string
	// files are extra files the TLS server serves, URL path → file.
	files        map[string]string
	omahaPayload func([]byte) []byte // when set, the server hosts its result instead of the TUF-pinned payload
	// nearSource makes the new image USR-A's with a few chunks changed, so that a delta
	// from it is small (delta_test.go).
	nearSource bool
}

func signer(t testing.TB, k *keys.PrivateKey) signature.Signer {
	s, err := k.SigstoreSigner()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func gen(t testing.TB) *keys.PrivateKey {
	k, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newWorld(t testing.TB, o worldOptions) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, dir: t.TempDir(), tamperAt: -1, to: toVersion}
	if o.usrSize == 0 {
		o.usrSize = 2 << 20
	}
	if o.chunk == 0 {
		o.chunk = 128 << 10
	}
	now := time.Now()
	tufNow := o.tufNow
	if tufNow.IsZero() {
		tufNow = now
	}

	// Keys: four TUF roles (offline root and targets, online snapshot and timestamp) and
	// the payload key.
	rootK, targetsK, snapK, tsK, payK := gen(t), gen(t), gen(t), gen(t), gen(t)
	roles := map[string]repo.RoleKeys{}
	for role, k := range map[string]*keys.PrivateKey{sytuf.RoleRoot: rootK, sytuf.RoleTargets: targetsK, sytuf.RoleSnapshot: snapK, sytuf.RoleTimestamp: tsK} {
		roles[role] = repo.RoleKeys{Keys: []crypto.PublicKey{k.Public().CryptoPublicKey()}, Threshold: 1}
	}
	root, err := repo.NewRoot(roles, sytuf.Expiry(tufNow, sytuf.DefaultRootExpiry))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.SignRoot(nil, root, signer(t, rootK)); err != nil {
		t.Fatal(err)
	}
	rootData, err := root.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	w.rootFile = w.path("tuf-root.json", rootData)
	w.targetsSigner = signer(t, targetsK)
	var m *payload.Manifest
	if o.prebuilt != "" {
		pub, err := os.ReadFile(o.prebuiltKey)
		if err != nil {
			t.Fatal(err)
		}
		w.keyFile = w.path("payload-keys/release.pem", pub)
		if w.payload, err = os.ReadFile(o.prebuilt); err != nil {
			t.Fatal(err)
		}
		env, err := payload.ReadEnvelope(bytes.NewReader(w.payload))
		if err != nil {
			t.Fatal(err)
		}
		m, w.to = env.Manifest, env.Manifest.Version
	} else {
		pub, _ := payK.Public().MarshalPEM()
		w.keyFile = w.path("payload-keys/release.pem", pub)
		m = w.build(o, payK)
	}
	sum := sha256.Sum256(w.payload)

	// TUF: pin the payload with its custom fields; the server publishes it.
	r, err := repo.Init(filepath.Join(w.dir, "tufrepo"), rootData)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddTarget(board+"/"+w.to+"/update.sy", repo.Target{Length: int64(len(w.payload)), SHA256: sum,
		Custom: sytuf.Custom{Version: w.to, Board: board, Channels: []string{"stable"}, ReleaseCounter: 4001,
			PartitionSize: int64(m.PartitionSize), PartitionSHA256: hex.EncodeToString(m.PartitionSHA256[:])}}); err != nil {
		t.Fatal(err)
	}
	w.payKey, w.tufRepo, w.tufNow = payK, r, tufNow
	targetsData, err := r.SignTargets(sytuf.Expiry(tufNow, sytuf.DefaultTargetsExpiry), w.targetsSigner)
	if err != nil {
		t.Fatal(err)
	}
	// omaha-server with its SQLite store, TUF under /tuf/, over TLS on loopback.
	st, err := sqlite.Open(ctx, filepath.Join(w.dir, "server.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := server.New(ctx, server.Config{DataDir: filepath.Join(w.dir, "data"), ServerName: "test",
		TUF: &tufhost.Config{Dir: filepath.Join(w.dir, "tufhost"), Keys: []signature.Signer{signer(t, snapK), signer(t, tsK)},
			InitialRoot: rootData, Now: func() time.Time { return tufNow }},
		FleetLock: o.fleetLock}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w.tuf = s.TUF()
	if _, err := w.tuf.Publish(ctx, tufhost.Upload{Targets: targetsData}); err != nil {
		t.Fatal(err)
	}
	w.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		if f, ok := o.files[req.URL.Path]; ok {
			http.ServeFile(rw, req, f)
			return
		}
		if o.reportVersion != "" && req.URL.Path == "/v1/update/" {
			r, err := omaha.ParseRequest(req.Body)
			if err != nil {
				http.Error(rw, err.Error(), http.StatusBadRequest)
				return
			}
			r.Apps[0].Version = o.reportVersion
			body, _ := r.Marshal()
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.ContentLength = int64(len(body))
		}
		if strings.HasPrefix(req.URL.Path, "/packages/") {
			var start int64
			fmt.Sscanf(req.Header.Get("Range"), "bytes=%d-", &start)
			rw = &countingWriter{ResponseWriter: rw, w: w, pos: start}
		}
		s.ServeHTTP(rw, req)
	}))
	// Small socket buffers, so "bytes the server sent" stays close to "bytes the host read".
	w.srv.Listener = smallBuffers{w.srv.Listener}
	w.srv.StartTLS()
	t.Cleanup(w.srv.Close)
	w.caFile = w.path("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.srv.Certificate().Raw}))

	tok, hash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateToken(ctx, store.Token{Hash: hash, Role: store.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	w.admin, err = adminclient.New(w.srv.URL, tok, w.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	hosted, hostedTargets := w.payload, targetsData
	if o.omahaPayload != nil {
		// A payload TUF does not pin: the server's release gate refuses it with the targets
		// metadata, so it goes up as a release without (as for Flatcar's update_engine), and
		// the host must still find that the repository pins other bytes.
		hosted, hostedTargets = o.omahaPayload(bytes.Clone(w.payload)), nil
	}
	must(t)(w.admin.CreateApp(ctx, omaha.FlatcarAppID, "Flatcar Container Linux"))
	must(t)(w.admin.Upload(ctx, store.FlatcarAppID, adminapi.ReleaseMetadata{Version: w.to, Board: board,
		FileName: "update.sy", Size: int64(len(hosted))}, hostedTargets, bytes.NewReader(hosted)))
	must(t)(w.admin.CreateChannel(ctx, store.FlatcarAppID, "stable"))
	must(t)(w.admin.SetChannel(ctx, store.FlatcarAppID, "stable", board, w.to))
	ch, tr := "stable", "stable"
	must(t)(w.admin.CreateGroup(ctx, store.FlatcarAppID, adminapi.GroupInput{Name: "stable", Track: &tr, Channel: &ch}))

	// The host's disk: USR-A holds the running image, USR-B is empty.
	w.diskPath = filepath.Join(w.dir, "disk.img")
	if o.diskDir != "" {
		w.diskPath = filepath.Join(o.diskDir, "disk.img")
	}
	sizes := layout.Small()
	sizes.USR = o.usrSize
	var usrA io.Reader
	if o.prebuilt == "" {
		usrA = bytes.NewReader(usrImage(int(o.usrSize), 7))
	}
	if err := layout.WriteFile(ctx, w.diskPath, layout.Options{Sizes: sizes}, usrA); err != nil {
		t.Fatal(err)
	}
	w.newBoot()
	return w
}

func must(t testing.TB) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(32 << 10)
	}
	return c, err
}

type countingWriter struct {
	http.ResponseWriter
	w   *world
	pos int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.w.mu.Lock()
	onSent, at := c.w.onSent, c.w.tamperAt
	c.w.mu.Unlock()
	if at >= c.pos && at < c.pos+int64(len(p)) {
		p = bytes.Clone(p)
		p[at-c.pos] ^= 0x55
	}
	n, err := c.ResponseWriter.Write(p)
	c.pos += int64(n)
	total := c.w.served.Add(int64(n))
	if onSent != nil {
		onSent(total)
	}
	return n, err
}

func (w *world) path(name string, data []byte) string {
	p := filepath.Join(w.dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// newBoot writes a fresh boot id, as a reboot does.
func (w *world) newBoot() {
	w.bootID++
	w.path("boot_id", []byte(fmt.Sprintf("0c288430-2504-4db4-913a-%012d\n", w.bootID)))
}

// bootLoader runs gptprio.next on the image, as GRUB does at boot, and returns the chosen
// partition's label.
func (w *world) bootLoader() string {
	w.t.Helper()
	f, err := os.OpenFile(w.diskPath, os.O_RDWR, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	var chosen slots.Slot
	if _, err := slots.Apply(context.Background(), fileDev{f, fi.Size()}, func(t *gpt.Table) error {
		var err error
		chosen, err = slots.Next(t)
		return err
	}); err != nil {
		w.t.Fatal(err)
	}
	w.newBoot()
	return chosen.Label
}

type fileDev struct {
	*os.File
	size int64
}

func (f fileDev) Size() int64     { return f.size }
func (f fileDev) SectorSize() int { return 512 }

// conf writes an update.conf for the host and returns its path.
func (w *world) conf(version, active string, extra ...string) string {
	lines := []string{
		"# written by the test",
		"SERVER=" + w.srv.URL + "/v1/update/",
		"GROUP=stable",
		"FLATCAR_RELEASE_VERSION=" + version,
		"FLATCAR_RELEASE_BOARD=" + board,
		"MACHINE_ID=" + machineID,
		"BOOT_ID_FILE=" + filepath.Join(w.dir, "boot_id"),
		"SERVER_CA=" + w.caFile,
		"TUF_ROOT=" + w.rootFile,
		"PAYLOAD_KEYS=" + filepath.Dir(w.keyFile),
		"STATE_DIR=" + filepath.Join(w.dir, "state"),
		"CONTROL_SOCKET=" + filepath.Join(w.dir, "ue.sock"),
		"DISK=" + w.diskPath,
		"ACTIVE_PARTITION=" + active,
		"REBOOT_STRATEGY=off",
		"HEALTH_MIN_UPTIME=0s",
		"DBUS=off", // never the host's system bus
	}
	lines = append(lines, extra...)
	return w.path("update.conf", []byte(strings.Join(lines, "\n")+"\n"))
}

// engine runs update-engine in-process with the given flags.
func (w *world) engine(ctx context.Context, conf string, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := run(ctx, append([]string{"-config", conf}, args...), &out, &errOut)
	if testing.Verbose() {
		w.t.Logf("update-engine %v: %v\n%s%s", args, err, out.String(), errOut.String())
	}
	return out.String(), err
}

// events returns the events the server recorded for the host, as "type/result[ code=N][ prev=V]".
func (w *world) events() []string {
	w.t.Helper()
	evs, err := w.admin.ListEvents(context.Background(), store.FlatcarAppID, machineID)
	if err != nil {
		w.t.Fatal(err)
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].At.Before(evs[j].At) })
	var out []string
	for _, e := range evs {
		s := fmt.Sprintf("%d/%d", e.Type, e.Result)
		if e.ErrorCode != 0 {
			s += fmt.Sprintf(" code=%d", e.ErrorCode)
		}
		if e.PreviousVersion != "" {
			s += " prev=" + e.PreviousVersion
		}
		out = append(out, s)
	}
	return out
}

// slot returns USR partition n's attributes.
func (w *world) slot(n int) slots.Slot {
	w.t.Helper()
	f, err := os.Open(w.diskPath)
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	tb, err := gpt.Read(context.Background(), f, fi.Size(), 512)
	if err != nil {
		w.t.Fatal(err)
	}
	s, err := slots.Get(tb, n)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// activeBytes hashes USR-A.
func (w *world) activeBytes() [32]byte {
	w.t.Helper()
	d := &disk.Disk{Path: w.diskPath, Active: "USR-B"}
	win, err := d.OpenTarget(context.Background(), layout.NumUSRA)
	if err != nil {
		w.t.Fatal(err)
	}
	defer win.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(win, 0, win.Size())); err != nil {
		w.t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// partitionB returns USR-B's bytes.
func (w *world) partitionB() []byte {
	w.t.Helper()
	d := &disk.Disk{Path: w.diskPath, Active: "USR-A"}
	win, err := d.OpenTarget(context.Background(), layout.NumUSRB)
	if err != nil {
		w.t.Fatal(err)
	}
	defer win.Close()
	b := make([]byte, win.Size())
	if _, err := win.ReadAt(b, 0); err != nil {
		w.t.Fatal(err)
	}
	return b
}

// resumeOp returns the next operation of the persisted download checkpoint (0 if none).
func (w *world) resumeOp() int {
	st, err := state.Store{Dir: filepath.Join(w.dir, "state")}.Load()
	if err != nil || st.Resume == nil {
		return 0
	}
	return st.Resume.NextOperation
}

// build makes and signs the world's payload from a generated image.
func (w *world) build(o worldOptions, payK *keys.PrivateKey) *payload.Manifest {
	t, ctx := w.t, context.Background()

	// The release: a payload built from the new USR image and signed with the payload key.
	w.image = usrImage(int(o.usrSize), 42)
	if o.nearSource {
		w.image = nearImage(usrImage(int(o.usrSize), 7), o.chunk)
	}
	if o.noisy {
		rnd := rand.New(rand.NewPCG(9, 9))
		for off := 0; off+4096 <= len(w.image); off += 4096 {
			if rnd.IntN(2) == 0 {
				for i := off; i < off+4096; i += 8 {
					binary.LittleEndian.PutUint64(w.image[i:], rnd.Uint64())
				}
			}
		}
	}
	pp := filepath.Join(w.dir, "update.sy")
	f, err := os.Create(pp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := payload.Build(ctx, bytes.NewReader(w.image), int64(len(w.image)), f,
		payload.BuildConfig{Version: toVersion, Board: board, ChunkSize: o.chunk, Compression: o.compression, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	ps, err := keys.NewSigner(payK)
	if err != nil {
		t.Fatal(err)
	}
	if err := payload.SignFile(ctx, pp, ps); err != nil {
		t.Fatal(err)
	}
	if w.payload, err = os.ReadFile(pp); err != nil {
		t.Fatal(err)
	}
	return m
}
