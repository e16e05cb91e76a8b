package install

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/payload"
	"github.com/switchyard-os/switchyard/update-engine/disk"
	"github.com/switchyard-os/switchyard/update-engine/engine"
	"github.com/switchyard-os/switchyard/update-engine/fetch"
	"github.com/switchyard-os/switchyard/update-engine/state"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// usrImage is a compressible, not trivially repetitive partition image of size bytes.
func usrImage(size int, seed uint64) []byte {
	rnd := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, size)
	words := [][]byte{[]byte("usr/bin/"), []byte("lib64/"), []byte("systemd "), []byte("\x00\x00\x00\x00"), []byte("ELF")}
	for i := 0; i < len(b); {
		w := words[rnd.IntN(len(words))]
		i += copy(b[i:], w)
		if rnd.IntN(8) == 0 && i < len(b) {
			b[i] = byte(rnd.IntN(256))
			i++
		}
	}
	// A zero stretch becomes a ZERO operation.
	clear(b[size/2 : size/2+64<<10])
	return b
}

type fixture struct {
	image     []byte
	payload   []byte
	sum       [32]byte
	key       *keys.PrivateKey
	verifier  *keys.Verifier
	diskPath  string
	dk        *disk.Disk
	chunkSize int64
}

func newFixture(t *testing.T, size int, chunk int64) *fixture {
	t.Helper()
	f := &fixture{image: usrImage(size, 7), chunkSize: chunk}
	var err error
	if f.key, err = keys.Generate(keys.Ed25519); err != nil {
		t.Fatal(err)
	}
	if f.verifier, err = keys.NewVerifier(f.key.Public()); err != nil {
		t.Fatal(err)
	}
	f.payload = buildPayload(t, f.image, "4001.0.0", "amd64-usr", chunk, f.key)
	f.sum = sha256.Sum256(f.payload)
	f.diskPath = filepath.Join(t.TempDir(), "disk.img")
	sizes := layout.Small()
	sizes.USR = int64(size) // the payload's partition is the whole target partition
	if err := layout.WriteFile(t.Context(), f.diskPath, layout.Options{Sizes: sizes}, bytes.NewReader(usrImage(1<<20, 1))); err != nil {
		t.Fatal(err)
	}
	f.dk = &disk.Disk{Path: f.diskPath, Active: "USR-A"}
	return f
}

func buildPayload(t *testing.T, image []byte, version, board string, chunk int64, key *keys.PrivateKey) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "update.sy")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := payload.Build(t.Context(), bytes.NewReader(image), int64(len(image)), out,
		payload.BuildConfig{Version: version, Board: board, ChunkSize: chunk, TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	out.Close()
	if key != nil {
		s, err := keys.NewSigner(key)
		if err != nil {
			t.Fatal(err)
		}
		if err := payload.SignFile(t.Context(), p, s); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serve serves data; each of the first cuts responses is cut after cutAfter bytes.
func serve(t *testing.T, data []byte, cutAfter int, cuts int32) *httptest.Server {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cutAfter > 0 && n.Add(1) <= cuts {
			w = &cutWriter{ResponseWriter: w, left: cutAfter}
		}
		http.ServeContent(w, r, "update.sy", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	return srv
}

type cutWriter struct {
	http.ResponseWriter
	left int
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if len(p) > c.left {
		c.ResponseWriter.Write(p[:c.left])
		c.left = 0
		panic(http.ErrAbortHandler)
	}
	c.left -= len(p)
	return c.ResponseWriter.Write(p)
}

func (f *fixture) job(srvURL string, resume *state.Resume, cps *[]state.Resume) *engine.Job {
	return &engine.Job{
		Offer:     &omaha.Offer{Version: "4001.0.0", URLs: []string{srvURL + "/"}, Package: omaha.Package{Name: "update.sy", Size: uint64(len(f.payload))}, SHA256: f.sum[:]},
		Target:    engine.Target{Length: int64(len(f.payload)), SHA256: f.sum[:], Version: "4001.0.0", Board: "amd64-usr"},
		Partition: layout.NumUSRB,
		Resume:    resume,
		Progress:  func(done, total int64) {},
		Checkpoint: func(r state.Resume) error {
			if cps != nil {
				*cps = append(*cps, r)
			}
			return nil
		},
		Verifying: func() {},
	}
}

func (f *fixture) installer(srv *httptest.Server) *Installer {
	return &Installer{Disk: f.dk, HTTP: srv.Client(), Keys: f.verifier, Workers: 2, CheckpointBytes: 1,
		Fetch: fetch.Options{After: func(time.Duration) <-chan time.Time { c := make(chan time.Time, 1); c <- time.Time{}; return c }}}
}

// open opens the target partition through wrap, as Install does through the disk.
func (f *fixture) open(wrap func(Target) Target) func(ctx context.Context, n int) (Target, error) {
	return func(ctx context.Context, n int) (Target, error) {
		w, err := f.dk.OpenTarget(ctx, n)
		if err != nil {
			return nil, err
		}
		return wrap(w), nil
	}
}

// partition reads partition n of the image.
func (f *fixture) partition(t *testing.T, n int) []byte {
	t.Helper()
	d := &disk.Disk{Path: f.diskPath, Active: map[int]string{3: "USR-B", 4: "USR-A"}[n]}
	w, err := d.OpenTarget(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	b := make([]byte, w.Size())
	if _, err := w.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInstall(t *testing.T) {
	f := newFixture(t, 1<<20, 128<<10)
	activeBefore := f.partition(t, layout.NumUSRA)
	srv := serve(t, f.payload, 0, 0)
	in := f.installer(srv)
	var cps []state.Resume
	if err := in.Install(t.Context(), f.job(srv.URL, nil, &cps)); err != nil {
		t.Fatal(err)
	}
	got := f.partition(t, layout.NumUSRB)
	if !bytes.Equal(got[:len(f.image)], f.image) {
		t.Fatal("target partition differs from the image")
	}
	if !bytes.Equal(f.partition(t, layout.NumUSRA), activeBefore) {
		t.Fatal("the active partition changed")
	}
	if len(cps) < 6 {
		t.Errorf("%d checkpoints for 8 operations", len(cps))
	}
	if in.Received() != int64(len(f.payload)) {
		t.Errorf("received %d bytes, payload %d", in.Received(), len(f.payload))
	}
}

func TestInstallResume(t *testing.T) {
	// A checkpoint trails the download by the chunks in flight (and by a sync each); 128
	// operations keep that lag a small part of the payload, as it is for real payloads.
	f := newFixture(t, 8<<20, 64<<10)
	srv := serve(t, f.payload, len(f.payload)/2, 1)
	in := f.installer(srv)
	in.Fetch.MaxAttempts = 1 // the first drop ends the attempt, as a dying daemon would
	var cps []state.Resume
	err := in.Install(t.Context(), f.job(srv.URL, nil, &cps))
	var te *fetch.TransferError
	if !errors.As(err, &te) || engine.CodeOf(err) != omaha.ErrorCodeDownloadTransferError {
		t.Fatalf("first attempt: %v", err)
	}
	if len(cps) == 0 {
		t.Fatal("no checkpoint before the drop")
	}
	last := cps[len(cps)-1]
	if err := in.Install(t.Context(), f.job(srv.URL, &last, nil)); err != nil {
		t.Fatal(err)
	}
	if got := f.partition(t, layout.NumUSRB); !bytes.Equal(got[:len(f.image)], f.image) {
		t.Fatal("target differs after a resumed install")
	}
	if r := in.Received(); r >= int64(len(f.payload))*12/10 {
		t.Errorf("received %d bytes for a %d-byte payload (resume should keep it under 1.2x)", r, len(f.payload))
	}
	// A checkpoint whose hash state is garbage starts over rather than trusting it.
	bad := last
	bad.Applier = []byte(`{"sha256_state":"AAAA"}`)
	if err := in.Install(t.Context(), f.job(srv.URL, &bad, nil)); err != nil {
		t.Fatal(err)
	}
}

type failingTarget struct {
	Target
	after int64
}

func (ft *failingTarget) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > ft.after {
		return 0, &os.PathError{Op: "write", Path: "USR-B", Err: syscall.ENOSPC}
	}
	return ft.Target.WriteAt(p, off)
}

// syncFailingTarget fails every Sync.
type syncFailingTarget struct{ Target }

func (st *syncFailingTarget) Sync() error {
	return &os.PathError{Op: "fsync", Path: "USR-B", Err: syscall.EIO}
}

// TestTargetErrors checks that a failed write or sync of the target is a write error whose
// message says, with the package prefix, what failed.
func TestTargetErrors(t *testing.T) {
	f := newFixture(t, 1<<20, 128<<10)
	tests := []struct {
		name string
		wrap func(Target) Target
		is   error
		want string
	}{
		{name: "write", wrap: func(w Target) Target { return &failingTarget{Target: w, after: 512 << 10} },
			is: syscall.ENOSPC, want: ": write USR-B: no space left on device"},
		{name: "sync", wrap: func(w Target) Target { return &syncFailingTarget{Target: w} },
			is: syscall.EIO, want: ": syncing target: fsync USR-B: input/output error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, f.payload, 0, 0)
			in := f.installer(srv)
			err := in.install(t.Context(), f.job(srv.URL, nil, nil), f.open(tt.wrap))
			if got := engine.CodeOf(err); got != omaha.ErrorCodeDownloadWriteError {
				t.Fatalf("code %d (%v), want %d", got, err, omaha.ErrorCodeDownloadWriteError)
			}
			// One prefix, the applier's context, the target's own error; no stutter.
			msg := err.Error()
			if !errors.Is(err, tt.is) || !strings.HasPrefix(msg, "install: payload: ") || !strings.HasSuffix(msg, tt.want) ||
				strings.Count(msg, "install: ") != 1 {
				t.Fatalf("Install = %q, want \"install: payload: …%s\" wrapping %v", msg, tt.want, tt.is)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, 1<<20, 128<<10)
	other, _ := keys.Generate(keys.Ed25519)
	otherV, _ := keys.NewVerifier(other.Public())
	tampered := bytes.Clone(f.payload)
	tampered[len(tampered)-100] ^= 0xff
	unsigned := buildPayload(t, f.image, "4001.0.0", "amd64-usr", 128<<10, nil)
	wrongVersion := buildPayload(t, f.image, "4002.0.0", "amd64-usr", 128<<10, f.key)
	smaller := buildPayload(t, f.image[:len(f.image)/2], "4001.0.0", "amd64-usr", 128<<10, f.key)

	tests := []struct {
		name  string
		data  []byte
		edit  func(*Installer, *engine.Job)
		wrap  func(Target) Target // the target partition, as the installer sees it
		code  omaha.ErrorCode
		wrote bool
	}{
		{name: "tampered data", data: tampered, code: omaha.ErrorCodeDownloadOperationHashMismatch, wrote: true},
		{name: "wrong key", data: f.payload, edit: func(in *Installer, _ *engine.Job) { in.Keys = otherV }, code: omaha.ErrorCodeDownloadPayloadPubKeyVerificationError},
		{name: "no key", data: f.payload, edit: func(in *Installer, _ *engine.Job) { in.Keys = nil }, code: omaha.ErrorCodeDownloadPayloadPubKeyVerificationError},
		{name: "unsigned", data: unsigned, code: omaha.ErrorCodeDownloadSignatureMissingInManifest},
		{name: "manifest for another version", data: wrongVersion, code: omaha.ErrorCodeDownloadNewPartitionInfoError},
		{name: "not TUF's file", data: f.payload, edit: func(_ *Installer, j *engine.Job) {
			s := sha256.Sum256([]byte("x"))
			j.Target.SHA256 = s[:]
		}, code: omaha.ErrorCodePayloadHashMismatchError, wrote: true},
		{name: "TUF partition hash differs", data: f.payload, edit: func(_ *Installer, j *engine.Job) { j.Target.PartitionSHA256 = make([]byte, 32) }, code: omaha.ErrorCodeDownloadNewPartitionInfoError},
		{name: "disk full", data: f.payload, wrap: func(w Target) Target { return &failingTarget{Target: w, after: 512 << 10} },
			code: omaha.ErrorCodeDownloadWriteError, wrote: true},
		{name: "partition smaller than the target", data: smaller, code: omaha.ErrorCodeDownloadNewPartitionInfoError},
		{name: "not a payload", data: bytes.Repeat([]byte("<html>"), 1000), code: omaha.ErrorCodeDownloadInvalidMetadataMagicString},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			activeBefore := f.partition(t, layout.NumUSRA)
			srv := serve(t, tt.data, 0, 0)
			in := f.installer(srv)
			in.Fetch.MaxAttempts = 2
			job := f.job(srv.URL, nil, nil)
			job.Target.Length = int64(len(tt.data))
			if tt.name != "not TUF's file" {
				s := sha256.Sum256(tt.data)
				job.Target.SHA256 = s[:]
			}
			if tt.edit != nil {
				tt.edit(in, job)
			}
			var err error
			if tt.wrap != nil {
				err = in.install(t.Context(), job, f.open(tt.wrap))
			} else {
				err = in.Install(t.Context(), job)
			}
			if got := engine.CodeOf(err); got != tt.code {
				t.Fatalf("code %d (%v), want %d", got, err, tt.code)
			}
			if !bytes.Equal(f.partition(t, layout.NumUSRA), activeBefore) {
				t.Fatal("the active partition changed")
			}
		})
	}
}

// syncCounter counts the syncs of a target.
type syncCounter struct {
	Target
	syncs atomic.Int64
}

func (s *syncCounter) Sync() error {
	err := s.Target.Sync()
	s.syncs.Add(1)
	return err
}

// TestCheckpointAfterSync: a checkpoint promises that the operations before it are on the
// disk, so the partition is synced before each checkpoint is saved. Without it a power cut
// keeps the checkpoint and loses the data, and the resumed payload fails its partition hash.
func TestCheckpointAfterSync(t *testing.T) {
	f := newFixture(t, 1<<20, 64<<10)
	srv := serve(t, f.payload, 0, 0)
	in := f.installer(srv)
	tr := &syncCounter{}
	checked, lastSyncs := 0, int64(0)
	job := f.job(srv.URL, nil, nil)
	job.Checkpoint = func(r state.Resume) error {
		n := tr.syncs.Load()
		if n <= lastSyncs {
			t.Errorf("checkpoint at operation %d saved without a sync of the partition since the last one", r.NextOperation)
		}
		lastSyncs = n
		checked++
		return nil
	}
	if err := in.install(t.Context(), job, f.open(func(w Target) Target { tr.Target = w; return tr })); err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no checkpoint was saved")
	}
}

// TestClassify: the applier's error kinds map to their Omaha codes by type, with nothing
// on the side: the target's failures are write errors, the reader's the transfer's.
func TestClassify(t *testing.T) {
	transfer := &fetch.TransferError{Err: io.ErrUnexpectedEOF}
	tests := []struct {
		name string
		err  error
		code omaha.ErrorCode
	}{
		{name: "target write", err: &payload.TargetError{Op: "writing operation 3", Err: syscall.ENOSPC},
			code: omaha.ErrorCodeDownloadWriteError},
		{name: "target sync", err: &payload.TargetError{Op: "syncing target", Err: syscall.EIO},
			code: omaha.ErrorCodeDownloadWriteError},
		{name: "transfer under a read", err: &payload.ReadError{What: "operation 3 data", Err: transfer},
			code: omaha.ErrorCodeDownloadTransferError},
		{name: "other read failure", err: &payload.ReadError{What: "header", Err: io.ErrClosedPipe},
			code: omaha.ErrorCodeDownloadTransferError},
		{name: "payload ends early", err: fmt.Errorf("%w: reading operation 3 data", payload.ErrTruncated),
			code: omaha.ErrorCodePayloadSizeMismatchError},
		{name: "target size", err: fmt.Errorf("%w: target 2 bytes, partition 1 bytes", payload.ErrTargetSize),
			code: omaha.ErrorCodeDownloadNewPartitionInfoError},
		{name: "data hash", err: fmt.Errorf("%w: operation 3", payload.ErrDataHash),
			code: omaha.ErrorCodeDownloadOperationHashMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify(tt.err)
			if got := engine.CodeOf(err); got != tt.code {
				t.Fatalf("classify(%v) has code %d, want %d", tt.err, got, tt.code)
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("classify(%v) = %v, which does not wrap it", tt.err, err)
			}
		})
	}
}
