package main

import (
	"flag"
	"io"
	"testing"

	"github.com/switchyard-os/switchyard/omaha-server/server"
)

// TestLimitFlagDefaults: serve bounds connections and the Omaha rate, and keeps retention
// on, unless told otherwise.
func TestLimitFlagDefaults(t *testing.T) {
	parse := func(args ...string) (server.Config, maintenanceFlags) {
		t.Helper()
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
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
