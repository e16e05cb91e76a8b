package repo

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/switchyard-os/switchyard/internal/smallfile"
	"github.com/switchyard-os/switchyard/signing/keys"
	"github.com/switchyard-os/switchyard/signing/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func signer(t testing.TB, alg keys.Algorithm) signature.Signer {
	t.Helper()
	k, err := keys.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.SigstoreSigner()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pubOf(t testing.TB, s signature.Signer) crypto.PublicKey {
	t.Helper()
	p, err := s.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type testKeys struct {
	root    []signature.Signer
	targets signature.Signer
	online  signature.Signer
}

func newRepo(t *testing.T, nRoot, threshold int) (*Repo, testKeys) {
	t.Helper()
	k := testKeys{targets: signer(t, keys.ECDSAP256), online: signer(t, keys.Ed25519)}
	rk := RoleKeys{Threshold: threshold}
	for range nRoot {
		s := signer(t, keys.Ed25519)
		k.root = append(k.root, s)
		rk.Keys = append(rk.Keys, pubOf(t, s))
	}
	root, err := NewRoot(map[string]RoleKeys{
		tuf.RoleRoot:      rk,
		tuf.RoleTargets:   {Keys: []crypto.PublicKey{pubOf(t, k.targets)}, Threshold: 1},
		tuf.RoleSnapshot:  {Keys: []crypto.PublicKey{pubOf(t, k.online)}, Threshold: 1},
		tuf.RoleTimestamp: {Keys: []crypto.PublicKey{pubOf(t, k.online)}, Threshold: 1},
	}, tuf.Expiry(time.Now(), tuf.DefaultRootExpiry))
	if err != nil {
		t.Fatal(err)
	}
	if err := SignRoot(nil, root, k.root[:threshold]...); err != nil {
		t.Fatal(err)
	}
	data, err := root.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Init(filepath.Join(t.TempDir(), "repo"), data)
	if err != nil {
		t.Fatal(err)
	}
	return r, k
}

func TestNewRootRefuses(t *testing.T) {
	s := signer(t, keys.Ed25519)
	full := func() map[string]RoleKeys {
		m := map[string]RoleKeys{}
		for _, role := range tuf.Roles {
			m[role] = RoleKeys{Keys: []crypto.PublicKey{pubOf(t, s)}, Threshold: 1}
		}
		return m
	}
	tests := map[string]func(map[string]RoleKeys){
		"missing role":   func(m map[string]RoleKeys) { delete(m, tuf.RoleSnapshot) },
		"zero threshold": func(m map[string]RoleKeys) { m[tuf.RoleRoot] = RoleKeys{Keys: m[tuf.RoleRoot].Keys} },
		"threshold above keys": func(m map[string]RoleKeys) {
			m[tuf.RoleTargets] = RoleKeys{Keys: m[tuf.RoleTargets].Keys, Threshold: 2}
		},
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			m := full()
			mutate(m)
			if _, err := NewRoot(m, time.Now()); !errors.Is(err, ErrInvalid) {
				t.Fatalf("NewRoot = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestTargetsWorkflow(t *testing.T) {
	r, k := newRepo(t, 1, 1)
	ctx := context.Background()
	payload := filepath.Join(t.TempDir(), "p")
	content := []byte("payload content")
	if err := os.WriteFile(payload, content, 0o644); err != nil {
		t.Fatal(err)
	}
	n, sum, err := HashFile(ctx, payload)
	if err != nil || n != int64(len(content)) || sum != sha256.Sum256(content) {
		t.Fatalf("HashFile = %d %x %v", n, sum, err)
	}
	tgt := Target{Length: n, SHA256: sum, Custom: tuf.Custom{Version: "1.0.0", Board: "amd64-usr"}}
	if err := r.AddTarget("amd64-usr/1.0.0/p", tgt); err != nil {
		t.Fatal(err)
	}
	if err := r.AddTarget("amd64-usr/1.0.1/p", Target{Length: 1, SHA256: sum, Custom: tuf.Custom{Version: "1.0.1", Board: "amd64-usr"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveTarget("amd64-usr/1.0.1/p"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "/abs", "a/../b", "a//b", ".hidden", "a/", "sp ace", "-flag"} {
		if err := r.AddTarget(bad, tgt); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddTarget(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := r.AddTarget("x", Target{Length: 1, Custom: tuf.Custom{Version: "1"}}); !errors.Is(err, tuf.ErrCustom) {
		t.Errorf("AddTarget without board = %v", err)
	}

	// The wrong key is refused and nothing is written.
	if _, err := r.SignTargets(tuf.Expiry(time.Now(), time.Hour), k.online); !errors.Is(err, ErrThreshold) {
		t.Fatalf("SignTargets with the snapshot key = %v", err)
	}
	if cur, _, _ := r.Targets(); cur != nil {
		t.Fatal("targets.json written after a refused signing")
	}
	data, err := r.SignTargets(tuf.Expiry(time.Now(), time.Hour), k.targets)
	if err != nil {
		t.Fatal(err)
	}
	root, _, _ := r.Root()
	got, err := VerifyTargets(root, data, 0, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got.Signed.Version != 1 || len(got.Signed.Targets) != 1 || got.Signed.Expires.Nanosecond() != 0 {
		t.Fatalf("targets %+v", got.Signed)
	}
	name, _, err := FindPayload(got, Payload{Length: n, SHA256: sum, Version: "1.0.0"})
	if err != nil || name != "amd64-usr/1.0.0/p" {
		t.Fatalf("FindPayload = %q %v", name, err)
	}
	if _, err := os.Stat(filepath.Join(r.Dir(), StagedTargetsFile)); !os.IsNotExist(err) {
		t.Fatal("staged targets left after signing")
	}
	// The next version starts from the signed one.
	staged, err := r.Staged()
	if err != nil || len(staged.Signed.Targets) != 1 {
		t.Fatalf("Staged = %v %v", staged, err)
	}
	data2, err := r.SignTargets(tuf.Expiry(time.Now(), time.Hour), k.targets)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyTargets(root, data2, 1, data, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyTargets(root, data, 2, data2, time.Now()); !errors.Is(err, ErrVersion) {
		t.Fatalf("older targets: %v", err)
	}
	if _, err := VerifyTargets(root, data2, 1, data, time.Now().Add(2*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired targets: %v", err)
	}
	reopened, err := Open(r.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if cur, _, err := reopened.Targets(); err != nil || cur.Signed.Version != 2 {
		t.Fatalf("reopened targets %v %v", cur, err)
	}
}

func TestRootRotationInSittings(t *testing.T) {
	r, k := newRepo(t, 3, 2)
	newKey := signer(t, keys.RSA)
	oldID, _ := tuf.SignerKeyID(k.root[2])
	ch := RootChange{
		Add:        map[string][]crypto.PublicKey{tuf.RoleRoot: {pubOf(t, newKey)}},
		Revoke:     map[string][]string{tuf.RoleRoot: {oldID}},
		Thresholds: map[string]int{tuf.RoleRoot: 3},
		Expires:    tuf.Expiry(time.Now(), tuf.DefaultRootExpiry),
	}
	st, err := r.RotateRoot(ch, k.root[0])
	if err != nil {
		t.Fatal(err)
	}
	if st.Complete || st.MissingOld != 1 || st.MissingNew != 2 {
		t.Fatalf("after one signature: %+v", st)
	}
	if _, err := r.RotateRoot(ch, k.root[1]); !errors.Is(err, ErrInvalid) {
		t.Fatalf("second rotation while one is staged: %v", err)
	}
	// The revoked key may still sign for the old threshold (it is a root key of root 1).
	st, err = r.SignRoot(k.root[2])
	if err != nil {
		t.Fatal(err)
	}
	if st.Complete || st.MissingOld != 0 || st.MissingNew != 2 {
		t.Fatalf("after two: %+v", st)
	}
	if _, err := r.SignRoot(k.root[0]); !errors.Is(err, ErrInvalid) {
		t.Fatalf("the same key twice: %v", err)
	}
	if _, err := r.SignRoot(k.targets); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a non-root key: %v", err)
	}
	st, err = r.SignRoot(k.root[1], newKey)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Complete || st.Version != 2 {
		t.Fatalf("after four: %+v", st)
	}
	prev, _, _ := r.readRoot(1)
	next, _, err := r.Root()
	if err != nil || next.Signed.Version != 2 {
		t.Fatal(next, err)
	}
	if err := VerifyRootUpdate(prev, next); err != nil {
		t.Fatal(err)
	}
	if vs, _ := r.RootVersions(); len(vs) != 2 {
		t.Fatalf("versions %v", vs)
	}
	if s, _, _ := r.StagedRoot(); s != nil {
		t.Fatal("staged root left")
	}
	// Root 2 is no successor of itself, and root 1 is not of root 2.
	if err := VerifyRootUpdate(next, next); !errors.Is(err, ErrVersion) {
		t.Fatalf("VerifyRootUpdate(2, 2) = %v", err)
	}
	if err := VerifyRootUpdate(next, prev); !errors.Is(err, ErrVersion) {
		t.Fatalf("VerifyRootUpdate(2, 1) = %v", err)
	}
	// A version-3 root signed by the revoked key and two valid ones lacks one of the
	// three root 2 now requires.
	n3, err := NextRoot(next, RootChange{Expires: next.Signed.Expires})
	if err != nil {
		t.Fatal(err)
	}
	if err := SignRoot(next, n3, k.root[2]); !errors.Is(err, ErrInvalid) {
		t.Fatalf("revoked key signing root 3: %v", err)
	}
	if _, err := n3.Sign(k.root[2]); err != nil { // forced past SignRoot's check
		t.Fatal(err)
	}
	if err := SignRoot(next, n3, k.root[0], k.root[1]); err != nil {
		t.Fatal(err)
	}
	if err := VerifyRootUpdate(next, n3); !errors.Is(err, ErrThreshold) {
		t.Fatalf("root 3 with 2 of 3 = %v, want ErrThreshold", err)
	}
}

func TestInitRefuses(t *testing.T) {
	r, k := newRepo(t, 1, 1)
	_, data, _ := r.Root()
	if _, err := Init(r.Dir(), data); err == nil {
		t.Fatal("Init over an existing repository succeeded")
	}
	unsigned := metadata.Root(time.Now().Add(time.Hour))
	u, _ := unsigned.ToBytes(false)
	if _, err := Init(t.TempDir(), u); !errors.Is(err, ErrThreshold) {
		t.Fatalf("Init with an unsigned root = %v", err)
	}
	if _, err := Init(t.TempDir(), []byte("{")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Init with garbage = %v", err)
	}
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrNoRepo) {
		t.Fatalf("Open of an empty dir = %v", err)
	}
	_ = k
}

// FuzzParseTargets: ParseTargets never panics, and what it accepts follows the rules.
// Seeds: testdata/fuzz/FuzzParseTargets.
func FuzzParseTargets(f *testing.F) {
	f.Add([]byte(`{"signed":{"_type":"targets","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","targets":{"a/b":{"length":3,"hashes":{"sha256":"` + "0000000000000000000000000000000000000000000000000000000000000000" + `"},"custom":{"version":"1","board":"b"}}}},"signatures":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tg, err := ParseTargets(data)
		if err != nil {
			return
		}
		for name, tf := range tg.Signed.Targets {
			if err := CheckTarget(name, tf); err != nil {
				t.Fatalf("accepted a target that breaks the rules: %v", err)
			}
		}
	})
}

// FuzzParseRoot: ParseRoot never panics, and a root it accepts encodes again.
// Seeds: testdata/fuzz/FuzzParseRoot.
func FuzzParseRoot(f *testing.F) {
	f.Add([]byte(`{"signed":{"_type":"root","spec_version":"1.0.31","consistent_snapshot":true,"version":1,"expires":"2030-01-01T00:00:00Z","keys":{},"roles":{}},"signatures":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		root, err := ParseRoot(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		if _, err := root.ToBytes(false); err != nil {
			t.Fatalf("accepted root does not encode: %v", err)
		}
		_ = VerifyRootUpdate(nil, root) // must not panic on any accepted root
	})
}

// TestReadBound: a metadata file at tuf.MaxTargetsSize bytes is read (and parsed), one byte
// more is ErrInvalid and smallfile.ErrTooLarge, naming the file and the limit.
func TestReadBound(t *testing.T) {
	r, _ := newRepo(t, 1, 1)
	path := filepath.Join(r.dir, StagedTargetsFile)
	for _, tt := range []struct {
		name string
		size int
		want error
	}{
		{name: "at the limit", size: tuf.MaxTargetsSize, want: nil},
		{name: "one above", size: tuf.MaxTargetsSize + 1, want: smallfile.ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Whitespace is not valid metadata: at the limit the read succeeds and the
			// parse fails; above it the read fails.
			if err := os.WriteFile(path, bytes.Repeat([]byte(" "), tt.size), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := r.Staged()
			if err == nil {
				t.Fatal("Staged accepted whitespace")
			}
			tooLarge := errors.Is(err, smallfile.ErrTooLarge)
			if tooLarge != (tt.want != nil) {
				t.Fatalf("Staged = %v, want too large %v", err, tt.want != nil)
			}
			if tooLarge && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), strconv.Itoa(tuf.MaxTargetsSize))) {
				t.Errorf("error %q is not ErrInvalid naming %s and the limit", err, path)
			}
		})
	}
}
