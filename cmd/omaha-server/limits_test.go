package main

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/switchyard-os/switchyard/omaha-server/server"
)

// TestLimitFlagDefaults: serve bounds connections and the Omaha rate, and keeps retention
// on, unless told otherwise.
func TestLimitFlagDefaults(t *testing.T) {
	parse := func(args ...string) (server.Config, maintenanceFlags) {
		t.Helper()
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var c server.Config
		var m maintenanceFlags
		registerLimits(fs, &c)
		m.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return c, m
	}
	c, m := parse()
	l := c.Limits
	if l.MaxConns != server.DefaultMaxConns || l.OmahaRate != server.DefaultOmahaRate || l.OmahaBurst != server.DefaultOmahaBurst ||
		l.OmahaReadTimeout != server.DefaultOmahaReadTimeout || l.UploadReadTimeout != server.DefaultUploadReadTimeout ||
		l.MaxOmahaApps != server.DefaultMaxOmahaApps || l.MaxOmahaEvents != server.DefaultMaxOmahaEvents ||
		c.MaxOmahaBodyBytes != server.DefaultMaxOmahaBodyBytes {
		t.Errorf("defaults: %+v, body %d", l, c.MaxOmahaBodyBytes)
	}
	if m.m.RetainInstances != server.DefaultRetainInstances || m.m.RetainEvents != server.DefaultRetainEvents {
		t.Errorf("retention defaults: %v, %v", m.m.RetainInstances, m.m.RetainEvents)
	}
	c, m = parse("--max-conns", "0", "--omaha-rate", "0", "--retain-instances", "0", "--retain-events", "30d")
	if c.Limits.MaxConns != 0 || c.Limits.OmahaRate != 0 {
		t.Errorf("limits off: %+v", c.Limits)
	}
	if m.m.RetainInstances >= 0 || m.m.RetainEvents != 30*24*60*60*1e9 {
		t.Errorf("retention: keep instances %v, events %v", m.m.RetainInstances, m.m.RetainEvents)
	}
}

// TestServeLimitsConnections: serve wires --max-conns into its http.Server: with one
// connection held by unfinished headers, the next is closed on accept.
func TestServeLimitsConnections(t *testing.T) {
	addr, _, stop := serveInBackground(t, []string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--max-conns", "1", "--no-dashboard"})
	defer stop()
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	io.WriteString(held, "GET /healthz HTTP/1.1\r\n")
	next, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	io.WriteString(next, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	next.SetReadDeadline(time.Now().Add(10 * time.Second)) // the test's bound
	n, err := next.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); n != 0 || err == nil || ok && ne.Timeout() {
		t.Fatalf("second connection: read %d bytes, %v; want it closed", n, err)
	}
	held.Close()
}
