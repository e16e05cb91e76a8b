package rebootlock_test

import (
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"

	"github.com/switchyard-os/switchyard/rebootlock"
	"github.com/switchyard-os/switchyard/rebootlock/etcdtest"
)

func TestTLS(t *testing.T) {
	pki := etcdtest.NewPKI(t)
	c := startCluster(t, 1, &transport.TLSInfo{
		CertFile: pki.ServerCert, KeyFile: pki.ServerKey, TrustedCAFile: pki.CA, ClientCertAuth: true,
	})
	ctx := ctxT(t, 30*time.Second)
	good := c.client(t, rebootlock.EtcdConfig{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey})
	s := newSem(t, good, "tls", rebootlock.Options{})
	if err := s.TryLock(ctx, rebootlock.Holder{ID: "a"}); err != nil {
		t.Fatalf("lock over TLS with a client certificate: %v", err)
	}
	if err := s.TryLock(ctx, rebootlock.Holder{ID: "b"}); !errors.Is(err, rebootlock.ErrFull) {
		t.Fatalf("over TLS: %v, want ErrFull", err)
	}
	// Without the client certificate, or without our CA, etcd is not usable.
	for name, cfg := range map[string]rebootlock.EtcdConfig{
		"no client certificate": {CAFile: pki.CA},
		"system roots only":     {CertFile: pki.ClientCert, KeyFile: pki.ClientKey},
	} {
		cli := c.client(t, cfg)
		bad := newSem(t, cli, "tls", rebootlock.Options{OpTimeout: time.Second})
		if _, err := bad.Status(ctx); err == nil {
			t.Errorf("%s: status succeeded", name)
		}
	}
}
