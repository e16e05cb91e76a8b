package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/omaha/hostsig"
)

// TestHostEnroll: an operator enrolls a host's key, reads and lists it, replaces and
// removes it; a key that is not one is refused and nothing changes; a viewer may read only.
func TestHostEnroll(t *testing.T) {
	e := newAdminEnv(t)
	const m = "0123456789abcdef0123456789abcdef"
	key := func(b byte) string {
		seed := make([]byte, ed25519.SeedSize)
		seed[0] = b
		return hostsig.FormatPublicKey(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
	}
	if out := e.must("host", "enroll", m, key(1)); !strings.Contains(out, key(1)) {
		t.Fatalf("enroll printed %q", out)
	}
	if _, err := e.syctl("host", "enroll", m, "not-a-key"); err == nil || !strings.Contains(err.Error(), "Ed25519") {
		t.Fatalf("a bad key: %v, want a refusal naming Ed25519", err)
	}
	k, err := e.st.GetHostKey(context.Background(), m)
	if err != nil || k.PublicKey != key(1) || !k.Enrolled {
		t.Fatalf("stored key %+v, %v", k, err)
	}
	if out, err := e.syctlAs(e.viewerTok, "host", "enroll", m, key(2)); err == nil {
		t.Fatalf("a viewer enrolled a key: %s", out)
	}
	if out := e.must("host", "show", m); !strings.Contains(out, key(1)) || !strings.Contains(out, "true") {
		t.Errorf("show printed %q", out)
	}
	e.must("host", "enroll", m, key(2))
	if out := e.must("host", "list"); !strings.Contains(out, key(2)) || !strings.Contains(out, "enrolled") {
		t.Errorf("list printed %q", out)
	}
	e.must("host", "remove", m)
	if _, err := e.syctl("host", "show", m); err == nil {
		t.Error("show found a removed key")
	}
	if _, err := e.syctl("host", "enroll", m); !errors.Is(err, errUsage) {
		t.Errorf("enroll without a key: %v, want a usage error", err)
	}
}
