// Package transport builds the HTTP client update-engine uses for Omaha, TUF and payloads,
// and holds the URL policy they share.
//
// TLS: the server certificate is checked against the system roots, or against a configured
// CA bundle instead (CAFile); an optional client certificate is presented. TLS 1.2 is the
// minimum. Plain http:// is refused unless AllowPlainHTTP is set AND the host is a loopback
// address or "localhost" (test servers, a local mirror behind a TLS-terminating proxy);
// CheckURL enforces that on every URL the daemon is given (Omaha endpoint, TUF base, each
// payload URL) and on redirects.
//
// Timeouts: the client has no overall timeout (a payload download may take long); dial, TLS
// handshake and response headers are bounded, and callers bound requests with contexts;
// RequestTimeout wraps a client so each small request (Omaha, TUF metadata) is bounded whole.
package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// ErrInsecureURL is returned for a URL the policy refuses.
var ErrInsecureURL = errors.New("transport: refusing URL")

// Config is the TLS and URL policy.
type Config struct {
	CAFile         string
	ClientCertFile string
	ClientKeyFile  string
	AllowPlainHTTP bool
	// HeaderTimeout bounds the wait for response headers; 0 means 90 s.
	HeaderTimeout time.Duration
}

// CheckURL applies the policy to raw.
func (c Config) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w %q: %v", ErrInsecureURL, raw, err)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("%w %q: no host", ErrInsecureURL, raw)
		}
		return nil
	case "http":
		if !c.AllowPlainHTTP {
			return fmt.Errorf("%w %q: plain HTTP is not allowed (ALLOW_PLAIN_HTTP)", ErrInsecureURL, raw)
		}
		if !IsLoopback(u.Hostname()) {
			return fmt.Errorf("%w %q: plain HTTP only to a loopback server", ErrInsecureURL, raw)
		}
		return nil
	}
	return fmt.Errorf("%w %q: scheme %q", ErrInsecureURL, raw, u.Scheme)
}

// IsLoopback reports whether host is "localhost" or a loopback IP.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewClient returns an HTTP client with the TLS configuration and the URL policy applied to
// redirects.
func (c Config) NewClient() (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("transport: reading the CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("transport: %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.ClientCertFile != "" || c.ClientKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("transport: loading the client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	header := c.HeaderTimeout
	if header <= 0 {
		header = 90 * time.Second
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: header,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("transport: more than 10 redirects")
			}
			return c.CheckURL(req.URL.String())
		},
	}, nil
}
