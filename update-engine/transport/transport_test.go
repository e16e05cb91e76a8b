package transport

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url   string
		plain bool
		ok    bool
	}{
		{"https://updates.example/v1/update/", false, true},
		{"http://updates.example/v1/update/", false, false},
		{"http://updates.example/v1/update/", true, false},
		{"http://127.0.0.1:8080/v1/update/", false, false},
		{"http://127.0.0.1:8080/v1/update/", true, true},
		{"http://[::1]:8080/", true, true},
		{"http://localhost:8080/", true, true},
		{"ftp://updates.example/", true, false},
		{"https:///nohost", false, false},
		{"://bad", true, false},
	}
	for _, tt := range tests {
		err := Config{AllowPlainHTTP: tt.plain}.CheckURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q, plain=%v) = %v, want ok=%v", tt.url, tt.plain, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInsecureURL) {
			t.Errorf("error %v is not ErrInsecureURL", err)
		}
	}
}

func TestClientTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://127.0.0.1:1/plain", http.StatusFound)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)

	// System roots do not know the test CA.
	c, err := Config{}.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(srv.URL); err == nil {
		t.Error("an unknown CA was accepted")
	}
	// The configured CA is.
	c, err = Config{CAFile: ca}.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// A redirect to plain HTTP is refused.
	if _, err := c.Get(srv.URL + "/redirect"); !errors.Is(err, ErrInsecureURL) {
		t.Errorf("redirect to http = %v", err)
	}
	if tr := c.Transport.(*http.Transport); tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
		t.Error("TLS minimum is not 1.2")
	}

	// Bad files are clear errors.
	os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("junk"), 0o644)
	if _, err := (Config{CAFile: filepath.Join(dir, "junk.pem")}).NewClient(); err == nil {
		t.Error("a junk CA file was accepted")
	}
	if _, err := (Config{ClientCertFile: ca, ClientKeyFile: filepath.Join(dir, "none")}).NewClient(); err == nil {
		t.Error("a missing client key was accepted")
	}
}
