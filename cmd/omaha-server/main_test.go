package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/pgtest"
	"github.com/switchyard-os/switchyard/omaha-server/store/postgres"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

func TestTokenCreate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(ctx, []string{"token", "create", "--data-dir", dir, "--role", "viewer"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	tok := lines[len(lines)-1]
	st, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.LookupToken(ctx, auth.Hash(tok))
	if err != nil || got.Role != store.RoleViewer {
		t.Fatalf("token %q: %+v, %v", tok, got, err)
	}
	for _, bad := range [][]string{
		{"token", "create", "--data-dir", dir, "--role", "root"},
		{"token", "create", "--data-dir", dir},
		{"token", "delete"},
		{"token", "create", "--db", "mysql://x", "--role", "admin"},
	} {
		if err := run(ctx, bad, &out, &out); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestTokenCreatePostgres(t *testing.T) {
	c, err := pgtest.Start(context.Background(), pgtest.Options{})
	if err == pgtest.ErrNoPostgres {
		t.Skip("SKIPPING: " + err.Error() + " — run `apt-get install postgresql`")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	url, err := c.CreateDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"token", "create", "--db", url, "--role", "admin"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	st, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, err := st.LookupToken(context.Background(), auth.Hash(lines[len(lines)-1])); err != nil || got.Role != store.RoleAdmin {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestRefusesPlainHTTPBeyondLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "[::]:0", "example.com:80"} {
		var out bytes.Buffer
		err := run(context.Background(), []string{"serve", "--data-dir", t.TempDir(), "--listen", addr}, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "refusing to serve plain HTTP") {
			t.Errorf("%s: %v", addr, err)
		}
	}
	if err := run(context.Background(), []string{"serve", "--tls-cert", "x"}, new(bytes.Buffer), new(bytes.Buffer)); err == nil {
		t.Error("--tls-cert without --tls-key accepted")
	}
}

// serveInBackground runs serve and returns its address and a stop function.
func serveInBackground(t *testing.T, args []string) (string, *bytes.Buffer, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	var log bytes.Buffer
	go func() { errc <- serve(ctx, args, &log, &log, func(a string) { addrc <- a }) }()
	select {
	case a := <-addrc:
		return a, &log, func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	case err := <-errc:
		cancel()
		t.Fatalf("serve: %v\n%s", err, log.String())
	}
	return "", nil, nil
}

func TestServePlainOnLoopback(t *testing.T) {
	addr, log, stop := serveInBackground(t, []string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"})
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	stop()
	if resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
	if !strings.Contains(log.String(), "plain HTTP on loopback only") {
		t.Errorf("the log does not say it serves plain HTTP on loopback only:\n%s", log)
	}
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600)
	// With TLS, any address is allowed; listen on loopback all the same (tests stay local).
	addr, _, stop := serveInBackground(t, []string{"--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0",
		"--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem")})
	defer stop()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz over TLS: %d", resp.StatusCode)
	}
	// Go's TLS listener answers a plain request with 400; it must never serve it.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served on the TLS port")
		}
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "omaha-server test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
