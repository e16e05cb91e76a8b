package rebootlock_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"

	"github.com/switchyard-os/switchyard/rebootlock"
)

// testPKI writes a CA, a server certificate for 127.0.0.1 and a client certificate.
type testPKI struct{ ca, serverCert, serverKey, clientCert, clientKey string }

func makePKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test etcd CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return write(cn+".pem", "CERTIFICATE", der), write(cn+"-key.pem", "EC PRIVATE KEY", kder)
	}
	p := testPKI{ca: write("ca.pem", "CERTIFICATE", caDER)}
	p.serverCert, p.serverKey = leaf(2, "server", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.clientCert, p.clientKey = leaf(3, "client", x509.ExtKeyUsageClientAuth, nil)
	return p
}

func TestTLS(t *testing.T) {
	pki := makePKI(t)
	c := startCluster(t, 1, &transport.TLSInfo{
		CertFile: pki.serverCert, KeyFile: pki.serverKey, TrustedCAFile: pki.ca, ClientCertAuth: true,
	})
	ctx := ctxT(t, 30*time.Second)
	good := c.client(t, rebootlock.EtcdConfig{CAFile: pki.ca, CertFile: pki.clientCert, KeyFile: pki.clientKey})
	s := newSem(t, good, "tls", rebootlock.Options{})
	if err := s.TryLock(ctx, rebootlock.Holder{ID: "a"}); err != nil {
		t.Fatalf("lock over TLS with a client certificate: %v", err)
	}
	if err := s.TryLock(ctx, rebootlock.Holder{ID: "b"}); !errors.Is(err, rebootlock.ErrFull) {
		t.Fatalf("over TLS: %v, want ErrFull", err)
	}
	// Without the client certificate, or without our CA, etcd is not usable.
	for name, cfg := range map[string]rebootlock.EtcdConfig{
		"no client certificate": {CAFile: pki.ca},
		"system roots only":     {CertFile: pki.clientCert, KeyFile: pki.clientKey},
	} {
		cli := c.client(t, cfg)
		bad := newSem(t, cli, "tls", rebootlock.Options{OpTimeout: time.Second})
		if _, err := bad.Status(ctx); err == nil {
			t.Errorf("%s: status succeeded", name)
		}
	}
}
