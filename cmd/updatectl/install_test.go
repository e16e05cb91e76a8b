package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/switchyard-os/switchyard/partitions/layout"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/payload"
	sytuf "github.com/switchyard-os/switchyard/signing/tuf"
	tufclient "github.com/switchyard-os/switchyard/signing/tuf/client"
	"github.com/switchyard-os/switchyard/signing/tuf/repo"
	"github.com/switchyard-os/switchyard/update-engine/control"
	"github.com/switchyard-os/switchyard/update-engine/disk"
	"github.com/switchyard-os/switchyard/update-engine/engine"
	"github.com/switchyard-os/switchyard/update-engine/install"
	"github.com/switchyard-os/switchyard/update-engine/media"
	"github.com/switchyard-os/switchyard/update-engine/omahaclient"
	"github.com/switchyard-os/switchyard/update-engine/state"
	"github.com/switchyard-os/switchyard/update-engine/trust"
)

const (
	airRunning = "4000.0.0"
	airBoard   = "amd64-usr"
	airUSRSize = 1 << 20
)

func airGen(t *testing.T) (*keys.PrivateKey, signature.Signer) {
	t.Helper()
	k, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.SigstoreSigner()
	if err != nil {
		t.Fatal(err)
	}
	return k, s
}

// airImage is a partition image with some structure (it compresses, it is not constant).
func airImage(seed uint64) []byte {
	rnd := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, airUSRSize)
	for i := range b {
		if i%7 == 0 {
			b[i] = byte(rnd.IntN(256))
		} else {
			b[i] = byte(i / 4096)
		}
	}
	return b
}

// airKeys are the release's keys: TUF's four roles (online snapshot and timestamp share one)
// and the payload key the host accepts.
type airKeys struct {
	root, targets, online signature.Signer
	payload               *keys.PrivateKey
	rootMD                *metadata.Metadata[metadata.RootType]
	rootData              []byte
}

func newAirKeys(t *testing.T, now time.Time) *airKeys {
	t.Helper()
	k := &airKeys{}
	_, k.root = airGen(t)
	_, k.targets = airGen(t)
	_, k.online = airGen(t)
	k.payload, _ = airGen(t)
	pk := func(s signature.Signer) []crypto.PublicKey {
		p, err := s.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		return []crypto.PublicKey{p}
	}
	root, err := repo.NewRoot(map[string]repo.RoleKeys{
		sytuf.RoleRoot: {Keys: pk(k.root), Threshold: 1}, sytuf.RoleTargets: {Keys: pk(k.targets), Threshold: 1},
		sytuf.RoleSnapshot: {Keys: pk(k.online), Threshold: 1}, sytuf.RoleTimestamp: {Keys: pk(k.online), Threshold: 1},
	}, sytuf.Expiry(now, sytuf.DefaultRootExpiry))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.SignRoot(nil, root, k.root); err != nil {
		t.Fatal(err)
	}
	k.rootMD = root
	if k.rootData, err = root.ToBytes(false); err != nil {
		t.Fatal(err)
	}
	return k
}

// release describes the media to build; the zero values make a good one.
type release struct {
	version, board string // of the payload and its TUF target
	release        int64
	expires        time.Duration    // TUF metadata lifetime from now; negative: expired
	targetsSigner  signature.Signer // nil: the targets key
	payloadKey     *keys.PrivateKey // nil: the accepted payload key
	tamperPayload  bool             // flip a byte of the payload's data after TUF pinned it
	image          []byte
}

const airTarget = "amd64-usr/update.sy"

// buildMedia writes a release directory (update-engine/media's layout) under dir.
func buildMedia(t *testing.T, k *airKeys, r release, dir string) {
	t.Helper()
	if r.version == "" {
		r.version = "4001.0.0"
	}
	if r.board == "" {
		r.board = airBoard
	}
	if r.release == 0 {
		r.release = 4001
	}
	if r.expires == 0 {
		r.expires = time.Hour
	}
	if r.targetsSigner == nil {
		r.targetsSigner = k.targets
	}
	if r.payloadKey == nil {
		r.payloadKey = k.payload
	}
	// The payload, built and signed as `syctl payload build/sign` do.
	p := filepath.Join(t.TempDir(), "update.sy")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := payload.Build(t.Context(), bytes.NewReader(r.image), int64(len(r.image)), out,
		payload.BuildConfig{Version: r.version, Board: r.board, ChunkSize: 128 << 10, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	out.Close()
	s, err := keys.NewSigner(r.payloadKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := payload.SignFile(t.Context(), p, s); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if r.tamperPayload {
		data[len(data)-100] ^= 0xff
	}
	// The TUF metadata, as the server serves it under /tuf/.
	now := time.Now().UTC().Truncate(time.Second)
	exp := now.Add(r.expires)
	tg := metadata.Targets(exp)
	c, err := (sytuf.Custom{Version: r.version, Board: r.board, ReleaseCounter: r.release, Channels: []string{"stable"},
		PartitionSize: int64(m.PartitionSize), PartitionSHA256: hex.EncodeToString(m.PartitionSHA256[:])}).RawMessage()
	if err != nil {
		t.Fatal(err)
	}
	tg.Signed.Targets[airTarget] = &metadata.TargetFiles{Length: int64(len(data)), Hashes: metadata.Hashes{"sha256": sum[:]}, Custom: c, Path: airTarget}
	tg.Signed.Version = 1
	tg.Signed.Expires = exp
	if _, err := tg.Sign(r.targetsSigner); err != nil {
		t.Fatal(err)
	}
	sn := metadata.Snapshot(exp)
	sn.Signed.Meta["targets.json"] = metadata.MetaFile(1)
	if _, err := sn.Sign(k.online); err != nil {
		t.Fatal(err)
	}
	ts := metadata.Timestamp(exp)
	ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(1)
	if _, err := ts.Sign(k.online); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		t.Helper()
		full := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, md := range map[string]interface{ ToBytes(bool) ([]byte, error) }{
		"1.root.json": k.rootMD, "timestamp.json": ts, "1.snapshot.json": sn, "1.targets.json": tg,
	} {
		b, err := md.ToBytes(false)
		if err != nil {
			t.Fatal(err)
		}
		write(media.MetadataDir+"/"+name, b)
	}
	write(media.TargetsDir+"/"+airTarget, data)
}

// tarMedia writes dir as a tar file, metadata first, and returns its path.
func tarMedia(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "release.tar")
	o, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	tw := tar.NewWriter(o)
	for _, sub := range []string{media.MetadataDir, media.TargetsDir} {
		root := filepath.Join(dir, sub)
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Name: "./" + filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// airHost is a host: a Flatcar-layout disk image running USR-A, its state, and a real
// update-engine (engine, disk, installer, media) serving the control socket in-process.
type airHost struct {
	disk, socket, stateDir string
	dk                     *disk.Disk
}

func newAirHost(t *testing.T, k *airKeys, prep func(*state.State)) *airHost {
	t.Helper()
	dir := t.TempDir()
	h := &airHost{disk: filepath.Join(dir, "disk.img"), socket: filepath.Join(dir, "run", "ue.sock"), stateDir: filepath.Join(dir, "state")}
	sizes := layout.Small()
	sizes.USR = airUSRSize
	if err := layout.WriteFile(t.Context(), h.disk, layout.Options{Sizes: sizes}, bytes.NewReader(airImage(1))); err != nil {
		t.Fatal(err)
	}
	h.dk = &disk.Disk{Path: h.disk, Active: "USR-A"}
	rootFile := filepath.Join(dir, "root.json")
	if err := os.WriteFile(rootFile, k.rootData, 0o644); err != nil {
		t.Fatal(err)
	}
	store := state.Store{Dir: h.stateDir}
	if prep != nil {
		st, err := store.Load()
		if err != nil {
			t.Fatal(err)
		}
		prep(&st)
		if err := store.Save(st); err != nil {
			t.Fatal(err)
		}
	}
	ver, err := keys.NewVerifier(k.payload.Public())
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(h.stateDir, "tuf")
	// The online side is wired as the daemon wires it but never reached: nothing listens
	// there, and a local install asks neither the Omaha server nor the TUF URL.
	online, err := tufclient.New(tufclient.Config{MetadataURL: "http://127.0.0.1:1/tuf/", TrustedRoot: rootFile, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Options{
		Server: &omahaclient.Client{URL: "http://127.0.0.1:1/v1/update/"}, Trust: trust.TUF{Client: online}, Boot: h.dk,
		Installer: &install.Installer{Disk: h.dk, Keys: ver}, Store: store,
		Version: airRunning, Board: airBoard, BootID: "boot-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := control.Listen(h.socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		control.Serve(ctx, l, &media.Daemon{Engine: e, Config: media.Config{TrustedRoot: rootFile, CacheDir: cache}}, nil)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return h
}

func (h *airHost) bytes(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(h.disk)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// partition reads USR partition n of the disk.
func (h *airHost) partition(t *testing.T, n int) []byte {
	t.Helper()
	active := "USR-A"
	if n == layout.NumUSRA {
		active = "USR-B"
	}
	w, err := (&disk.Disk{Path: h.disk, Active: active}).OpenTarget(t.Context(), n)
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

func (h *airHost) install(t *testing.T, path string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(t.Context(), []string{"install", "--socket", h.socket, path}, &out, &out)
	return out.String(), err
}

// TestInstallLocal: a release directory and a tar of it install onto the inactive partition
// and flip the GPT to it, through the daemon's control socket.
func TestInstallLocal(t *testing.T) {
	for _, form := range []string{"dir", "tar"} {
		t.Run(form, func(t *testing.T) {
			k := newAirKeys(t, time.Now())
			image := airImage(2)
			dir := t.TempDir()
			buildMedia(t, k, release{image: image}, dir)
			path := dir
			if form == "tar" {
				path = tarMedia(t, dir)
			}
			h := newAirHost(t, k, nil)
			activeBefore := h.partition(t, layout.NumUSRA)
			out, err := h.install(t, path)
			if err != nil {
				t.Fatalf("install: %v\n%s", err, out)
			}
			if !strings.Contains(out, "installed 4001.0.0 on USR-B: reboot needed") {
				t.Errorf("output %q", out)
			}
			if !bytes.Equal(h.partition(t, layout.NumUSRB), image) {
				t.Error("USR-B does not hold the new image")
			}
			if !bytes.Equal(h.partition(t, layout.NumUSRA), activeBefore) {
				t.Error("USR-A changed")
			}
			active, target, err := h.dk.Slots(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if target.Label != "USR-B" || target.Tries != 1 || target.Priority <= active.Priority {
				t.Errorf("after the flip: active %+v, target %+v; want USR-B to boot next, once", active, target)
			}
			// A second install waits for the reboot first.
			if _, err := h.install(t, path); !errors.Is(err, control.ErrBusy) {
				t.Errorf("second install: %v, want busy", err)
			}
		})
	}
}

// TestInstallLocalRefusals: each bad release is refused with an error naming the problem.
// A refusal before the payload is read leaves the disk byte-identical; one found in the
// payload leaves the active partition and the boot order untouched (the target partition,
// made unbootable first, may hold part of the refused payload).
func TestInstallLocalRefusals(t *testing.T) {
	_, otherTUF := airGen(t)
	otherPayload, _ := airGen(t)
	tests := []struct {
		name      string
		r         release
		prep      func(*state.State)
		want      string
		identical bool // the whole disk is byte-identical afterwards
	}{
		{name: "wrong board", r: release{board: "arm64-usr"}, want: "for arm64-usr, the offer 4001.0.0 for amd64-usr", identical: true},
		{name: "equal version", r: release{version: airRunning}, want: "4000.0.0 offered, 4000.0.0 running", identical: true},
		{name: "older version", r: release{version: "3999.0.0"}, want: "3999.0.0 offered, 4000.0.0 running", identical: true},
		{name: "bad TUF signature", r: release{targetsSigner: otherTUF}, want: "signature", identical: true},
		{name: "expired metadata", r: release{expires: -time.Hour}, want: "expired", identical: true},
		{name: "release counter below the installed", r: release{release: 3}, prep: func(s *state.State) { s.Release = 4000 },
			want: "release counter 3 is not above the running 4000", identical: true},
		{name: "payload signed by an unknown key", r: release{payloadKey: otherPayload}, want: "install:", identical: true},
		{name: "payload hash mismatch", r: release{tamperPayload: true}, want: "install:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newAirKeys(t, time.Now())
			tt.r.image = airImage(3)
			dir := t.TempDir()
			buildMedia(t, k, tt.r, dir)
			h := newAirHost(t, k, tt.prep)
			before := h.bytes(t)
			activeBefore := h.partition(t, layout.NumUSRA)
			out, err := h.install(t, dir)
			if err == nil {
				t.Fatalf("installed:\n%s", out)
			}
			if !strings.Contains(err.Error(), "install refused") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if tt.identical && !bytes.Equal(h.bytes(t), before) {
				t.Error("the disk changed")
			}
			if !bytes.Equal(h.partition(t, layout.NumUSRA), activeBefore) {
				t.Error("the active partition changed")
			}
			active, target, err := h.dk.Slots(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if target.Priority >= active.Priority || target.Tries != 0 {
				t.Errorf("the target may boot: active %+v, target %+v", active, target)
			}
		})
	}
}
