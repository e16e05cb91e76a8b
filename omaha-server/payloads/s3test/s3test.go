// Package s3test starts a real S3 server on loopback for tests: versitygw (an Apache-2.0
// S3 gateway) over its posix backend, one process per Server, its objects in a directory
// of the test's. It is for tests only; nothing else may import it.
//
// The gateway is built once per machine with `go install` of Module@Version through the
// Go module proxy into the user cache directory (<cache>/switchyard-test/versitygw-<Version>/),
// so it stays out of the project's go.mod and binaries. A test that cannot get it (no go
// command, no proxy) is skipped with a message saying so; `make deps` builds it ahead of
// the suite.
//
// A Server can be stopped and restarted on the same address and directory, so tests can
// make the store unreachable in the middle of an operation. Buckets are directories under
// the gateway's root (that is how the posix backend defines them).
package s3test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Module and Version name the gateway that is built.
const (
	Module  = "github.com/versity/versitygw/cmd/versitygw"
	Version = "v1.8.0"
)

// Credentials of the gateway's root account.
const (
	AccessKey = "switchyard-test"
	SecretKey = "switchyard-test-secret"
	Region    = "us-east-1"
)

// startTimeout bounds how long a gateway may take to accept connections.
const startTimeout = 30 * time.Second

// Server is one running gateway.
type Server struct {
	// Endpoint is the gateway's base URL (http://127.0.0.1:PORT).
	Endpoint string

	t    testing.TB
	bin  string
	addr string
	root string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start builds the gateway if needed (or skips t when that is impossible), starts it on a
// free loopback port and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Skipf("SKIPPING: no S3 server for this test: building %s@%s failed: %v", Module, Version, err)
	}
	s := &Server{t: t, bin: bin, root: t.TempDir()}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Binary returns the path of the gateway binary, building it when it is not there yet.
func Binary() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "switchyard-test", "versitygw-"+Version)
	bin := filepath.Join(dir, "versitygw")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Build into a private directory and rename, so concurrent test binaries never see a
	// half-written file.
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "install", Module+"@"+Version)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-mod=mod", "GOWORK=off")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install: %v: %s", err, lastLines(string(out), 5))
	}
	if err := os.Rename(filepath.Join(tmp, "versitygw"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (s *Server) start() error {
	var lastErr error
	// A port found free may be taken before the gateway binds it: try a few.
	for range 5 {
		addr := s.addr
		if addr == "" {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			addr = l.Addr().String()
			l.Close()
		}
		if lastErr = s.run(addr); lastErr == nil {
			s.addr, s.Endpoint = addr, "http://"+addr
			return nil
		}
		if s.addr != "" {
			break
		}
	}
	return fmt.Errorf("s3test: starting the gateway: %w", lastErr)
}

func (s *Server) run(addr string) error {
	cmd := exec.Command(s.bin, "--port", addr, "--quiet", "--region", Region, "posix", s.root)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+AccessKey, "ROOT_SECRET_ACCESS_KEY="+SecretKey)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	// Wait until it accepts connections, or exits.
	deadline := time.Now().Add(startTimeout)
	for backoff := time.Millisecond; ; backoff = min(2*backoff, 100*time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			s.cmd, s.done = cmd, done
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("the gateway exited: %s", lastLines(out.String(), 5))
		case <-time.After(backoff):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return errors.New("the gateway did not accept connections within " + startTimeout.String())
		}
	}
}

// Stop kills the gateway and waits for it to exit; the store is unreachable afterwards.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts a stopped gateway again on the same address and directory.
func (s *Server) Restart() {
	s.t.Helper()
	if s.cmd != nil {
		return
	}
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// CreateBucket makes a bucket and returns its name.
func (s *Server) CreateBucket(name string) string {
	s.t.Helper()
	if err := os.Mkdir(filepath.Join(s.root, name), 0o755); err != nil {
		s.t.Fatal(err)
	}
	return name
}

// Root is the directory holding the buckets (bucket/key is a file path under it).
func (s *Server) Root() string { return s.root }
