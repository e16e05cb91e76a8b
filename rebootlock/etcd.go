package rebootlock

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdConfig says how to reach etcd. CAFile, CertFile and KeyFile are independent: a CA
// alone verifies the server; a certificate and key (both, or neither) authenticate us.
type EtcdConfig struct {
	Endpoints []string
	CAFile    string
	CertFile  string
	KeyFile   string
	Username  string
	Password  string
	// DialTimeout; 5 s when zero.
	DialTimeout time.Duration
}

// NewClient returns an etcd client for cfg. Like every etcd v3.7 client it connects lazily:
// an unreachable etcd shows up as an error of the first request.
func NewClient(cfg EtcdConfig) (*clientv3.Client, error) {
	var endpoints []string
	for _, e := range cfg.Endpoints {
		for _, part := range strings.Split(e, ",") {
			if part = strings.TrimSpace(part); part != "" {
				endpoints = append(endpoints, part)
			}
		}
	}
	if len(endpoints) == 0 {
		return nil, errors.New("rebootlock: no etcd endpoints")
	}
	tlsConfig, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	if tlsConfig == nil {
		for _, e := range endpoints {
			if strings.HasPrefix(e, "https://") {
				tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12} // system roots
				break
			}
		}
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, errors.New("rebootlock: etcd username and password go together")
	}
	dial := cfg.DialTimeout
	if dial <= 0 {
		dial = 5 * time.Second
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsConfig,
		Username:    cfg.Username,
		Password:    cfg.Password,
		DialTimeout: dial,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("rebootlock: etcd client: %w", err)
	}
	return c, nil
}

func (cfg EtcdConfig) tlsConfig() (*tls.Config, error) {
	if cfg.CAFile == "" && cfg.CertFile == "" && cfg.KeyFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("rebootlock: etcd CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("rebootlock: etcd CA %s: no PEM certificate in it", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	switch {
	case cfg.CertFile != "" && cfg.KeyFile != "":
		pair, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("rebootlock: etcd client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	case cfg.CertFile != "":
		return nil, fmt.Errorf("rebootlock: etcd client certificate %s given without its key", cfg.CertFile)
	case cfg.KeyFile != "":
		return nil, fmt.Errorf("rebootlock: etcd client key %s given without its certificate", cfg.KeyFile)
	}
	return tc, nil
}
