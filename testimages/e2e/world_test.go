package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
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
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/payload"
	sytuf "github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
)

const (
	board   = "amd64-usr"
	channel = "stable"
	// guestName is the name the server's certificate is for, as the guest dials it.
	guestName = "10.0.2.100"
)

// world is the host side of a scenario: omaha-server with TUF hosting over TLS on loopback,
// the keys of a release line, and counters of what the server sent.
type world struct {
	t   testing.TB
	dir string

	srv   *httptest.Server
	addr  netip.AddrPort // the server's loopback address (what guestfwd joins to)
	admin *adminclient.Client
	tuf   *tufhost.Host
	repo  *repo.Repo

	caPEM, rootJSON, payloadKeyPEM []byte
	targetsSigner                  signature.Signer
	payloadSigner                  *keys.FileSigner

	// served counts payload bytes the server wrote; ranges the Range requests it answered
	// (the "bytes=N-" offsets).
	served atomic.Int64
	mu     sync.Mutex
	ranges []int64
	// rate, when > 0, is the payload bytes per second the server sends (a slow link).
	rate atomic.Int64

	published map[string]int64 // version → payload size
	counter   int
}

func gen(t testing.TB) *keys.PrivateKey {
	t.Helper()
	k, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sigstoreSigner(t testing.TB, k *keys.PrivateKey) signature.Signer {
	t.Helper()
	s, err := k.SigstoreSigner()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newWorld starts the server with an empty release line: the app, the channel and the group
// exist, the channel points at nothing until publish.
func newWorld(t testing.TB, group string) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, dir: t.TempDir(), published: map[string]int64{}}
	now := time.Now()

	rootK, targetsK, snapK, tsK, payK := gen(t), gen(t), gen(t), gen(t), gen(t)
	roles := map[string]repo.RoleKeys{}
	for role, k := range map[string]*keys.PrivateKey{sytuf.RoleRoot: rootK, sytuf.RoleTargets: targetsK, sytuf.RoleSnapshot: snapK, sytuf.RoleTimestamp: tsK} {
		roles[role] = repo.RoleKeys{Keys: []crypto.PublicKey{k.Public().CryptoPublicKey()}, Threshold: 1}
	}
	root, err := repo.NewRoot(roles, sytuf.Expiry(now, sytuf.DefaultRootExpiry))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.SignRoot(nil, root, sigstoreSigner(t, rootK)); err != nil {
		t.Fatal(err)
	}
	if w.rootJSON, err = root.ToBytes(true); err != nil {
		t.Fatal(err)
	}
	w.targetsSigner = sigstoreSigner(t, targetsK)
	if w.payloadKeyPEM, err = payK.Public().MarshalPEM(); err != nil {
		t.Fatal(err)
	}
	if w.payloadSigner, err = keys.NewSigner(payK); err != nil {
		t.Fatal(err)
	}
	if w.repo, err = repo.Init(filepath.Join(w.dir, "tufrepo"), w.rootJSON); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(w.dir, "server.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := server.New(ctx, server.Config{DataDir: filepath.Join(w.dir, "data"), ServerName: "e2e",
		TUF: &tufhost.Config{Dir: filepath.Join(w.dir, "tufhost"), InitialRoot: w.rootJSON,
			Keys: []signature.Signer{sigstoreSigner(t, snapK), sigstoreSigner(t, tsK)}}}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w.tuf = s.TUF()

	caPEM, cert := testCA(t)
	w.caPEM = caPEM
	w.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/packages/") && req.Method == http.MethodGet {
			if r := req.Header.Get("Range"); r != "" {
				var start int64
				fmt.Sscanf(r, "bytes=%d-", &start)
				w.mu.Lock()
				w.ranges = append(w.ranges, start)
				w.mu.Unlock()
			}
			cw := &countingWriter{ResponseWriter: rw, w: w}
			start := time.Now()
			s.ServeHTTP(cw, req)
			t.Logf("payload request %s Range=%q: %d bytes sent in %v", req.URL.Path, req.Header.Get("Range"), cw.n, time.Since(start).Round(time.Millisecond))
			return
		}
		s.ServeHTTP(rw, req)
	}))
	w.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	w.srv.StartTLS()
	t.Cleanup(w.srv.Close)
	if w.addr, err = netip.ParseAddrPort(w.srv.Listener.Addr().String()); err != nil {
		t.Fatal(err)
	}

	tok, hash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateToken(ctx, store.Token{Hash: hash, Role: store.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}}
	if w.admin, err = adminclient.New("https://"+w.addr.String(), tok, hc); err != nil {
		t.Fatal(err)
	}
	must(t)(w.admin.CreateApp(ctx, omaha.FlatcarAppID, "Flatcar Container Linux"))
	must(t)(w.admin.CreateChannel(ctx, store.FlatcarAppID, channel))
	ch, tr := channel, group
	must(t)(w.admin.CreateGroup(ctx, store.FlatcarAppID, adminapi.GroupInput{Name: group, Track: &tr, Channel: &ch}))
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

// testCA makes a CA and a server certificate for 10.0.2.100 (the guest's view) and 127.0.0.1
// (the test's admin client), valid from an hour ago for a day.
func testCA(t testing.TB) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchyard e2e CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: guestName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(guestName), net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// countingWriter counts the payload bytes the server sends and paces them at w.rate.
type countingWriter struct {
	http.ResponseWriter
	w *world
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := len(p)
		rate := c.w.rate.Load()
		if rate > 0 {
			n = min(n, 16<<10)
		}
		m, err := c.ResponseWriter.Write(p[:n])
		written += m
		c.n += int64(m)
		c.w.served.Add(int64(m))
		if err != nil {
			return written, err
		}
		if rate > 0 {
			if f, ok := c.ResponseWriter.(http.Flusher); ok {
				f.Flush()
			}
			time.Sleep(time.Duration(int64(m) * int64(time.Second) / rate))
		}
		p = p[n:]
	}
	return written, nil
}

func (w *world) rangeStarts() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int64(nil), w.ranges...)
}

// publish turns a USR file system image into a signed zstd payload, pins it in TUF with the
// next release counter, uploads it and points the channel at it.
func (w *world) publish(version, usrImage string) {
	t, ctx := w.t, context.Background()
	t.Helper()
	in, err := os.Open(usrImage)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pp := filepath.Join(w.dir, "update-"+version+".sy")
	out, err := os.Create(pp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := payload.Build(ctx, in, fi.Size(), out, payload.BuildConfig{Version: version, Board: board,
		ChunkSize: 256 << 10, Compression: payload.ReplaceZstd, TempDir: t.TempDir()})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := payload.SignFile(ctx, pp, w.payloadSigner); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(pp)
	if err != nil {
		t.Fatal(err)
	}
	w.counter++
	sum := sha256.Sum256(data)
	if err := w.repo.AddTarget(board+"/"+version+"/update.sy", repo.Target{Length: int64(len(data)), SHA256: sum,
		Custom: sytuf.Custom{Version: version, Board: board, Channels: []string{channel}, ReleaseCounter: int64(w.counter),
			PartitionSize: int64(m.PartitionSize), PartitionSHA256: hex.EncodeToString(m.PartitionSHA256[:])}}); err != nil {
		t.Fatal(err)
	}
	targets, err := w.repo.SignTargets(sytuf.Expiry(time.Now(), sytuf.DefaultTargetsExpiry), w.targetsSigner)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.tuf.Publish(ctx, tufhost.Upload{Targets: targets}); err != nil {
		t.Fatal(err)
	}
	must(t)(w.admin.Upload(ctx, store.FlatcarAppID, adminapi.ReleaseMetadata{Version: version, Board: board,
		FileName: "update.sy", Size: int64(len(data))}, targets, bytes.NewReader(data)))
	must(t)(w.admin.SetChannel(ctx, store.FlatcarAppID, channel, board, version))
	w.published[version] = int64(len(data))
	t.Logf("published %s: payload %d bytes (partition image %d bytes)", version, len(data), fi.Size())
}

// events returns the events the server recorded for a machine, oldest first, as
// "type/result[ code=N][ prev=V]".
func (w *world) events(machineID string) []string {
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

// instance returns the server's record of a machine.
func (w *world) instance(machineID string) store.Instance {
	w.t.Helper()
	d, err := w.admin.GetInstance(context.Background(), machineID)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, i := range d {
		if i.AppID == store.FlatcarAppID {
			return i.Instance
		}
	}
	w.t.Fatalf("the server has no instance %s", machineID)
	return store.Instance{}
}

// waitFor polls cond until it holds or the context ends.
func waitFor(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
