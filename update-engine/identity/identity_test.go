package identity_test

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha/hostsig"
	"github.com/switchyard-os/switchyard/update-engine/identity"
)

// TestPersistsAcrossRestarts: the first start makes a key (0600) and its public file; a
// second start reads the same key back.
func TestPersistsAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	first, err := identity.LoadOrCreate(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, identity.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	pub, err := os.ReadFile(filepath.Join(dir, identity.PublicKeyFile))
	if err != nil || strings.TrimSpace(string(pub)) != first.PublicKeyString() {
		t.Errorf("public key file %q (%v), want %q", pub, err, first.PublicKeyString())
	}
	again, err := identity.LoadOrCreate(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !again.PublicKey().Equal(first.PublicKey()) {
		t.Fatalf("restart made a new key: %s, was %s", again.PublicKeyString(), first.PublicKeyString())
	}
	other, err := identity.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if other.PublicKey().Equal(first.PublicKey()) {
		t.Fatal("two state directories got the same key")
	}
}

// TestConcurrentFirstStart: processes starting together agree on one key.
func TestConcurrentFirstStart(t *testing.T) {
	dir := t.TempDir()
	keys := make([]string, 8)
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			id, err := identity.LoadOrCreate(dir, nil)
			errs[i] = err
			if err == nil {
				keys[i] = id.PublicKeyString()
			}
		})
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if keys[i] != keys[0] {
			t.Fatalf("start %d got key %s, start 0 got %s", i, keys[i], keys[0])
		}
	}
}

func TestRefusesBadKeyFiles(t *testing.T) {
	tests := []struct {
		name string
		data string
		mode os.FileMode
		want string
	}{
		{name: "garbage", data: "not a key\n", mode: 0o600, want: "no PEM PRIVATE KEY"},
		{name: "readable by others", data: "", mode: 0o644, want: "read by others"},
		{name: "too large", data: strings.Repeat("x", 8<<10), mode: 0o600, want: "more than 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, identity.KeyFile)
			if err := os.WriteFile(path, []byte(tt.data), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := identity.LoadOrCreate(dir, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadOrCreate = %v, want an error containing %q", err, tt.want)
			}
			if got, _ := os.ReadFile(path); string(got) != tt.data {
				t.Fatal("the bad key file was replaced")
			}
		})
	}
}

// TestSignRequest: a request signed by the identity verifies with its key at its clock.
func TestSignRequest(t *testing.T) {
	at := time.Unix(1796300000, 0)
	id, err := identity.LoadOrCreate(t.TempDir(), func() time.Time { return at })
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("<request/>")
	out, _ := http.NewRequest(http.MethodPost, "https://updates.example/v1/update/", bytes.NewReader(body))
	if err := id.SignRequest(out, body); err != nil {
		t.Fatal(err)
	}
	in := httptest.NewRequest(http.MethodPost, "https://updates.example/v1/update/", bytes.NewReader(body))
	in.Header = out.Header
	pub, err := hostsig.Verify(in, sha256.Sum256(body), at)
	if err != nil || !pub.Equal(id.PublicKey()) {
		t.Fatalf("Verify = %x, %v", pub, err)
	}
}
