package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/rebootlock/etcdtest"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// runLockT runs `updatectl lock args…` with env as the environment.
func runLockT(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cfg, err := parseLockFlags(args, func(k string) string { return env[k] }, &errb)
	if err != nil {
		return errb.String(), err
	}
	cfg.machineIDFile = filepath.Join(t.TempDir(), "machine-id")
	os.WriteFile(cfg.machineIDFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o644)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err = lockMain(ctx, cfg, &out)
	return out.String(), err
}

func TestLockCommands(t *testing.T) {
	ep := etcdtest.Start(t)
	env := map[string]string{"UPDATECTL_ETCD_ENDPOINTS": ep}
	step := func(wantErr string, args ...string) string {
		t.Helper()
		out, err := runLockT(t, env, args...)
		if wantErr == "" && err != nil {
			t.Fatalf("lock %v: %v", args, err)
		}
		if wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Fatalf("lock %v: %v, want an error with %q", args, err, wantErr)
		}
		return out
	}
	if out := step("", "status"); !strings.Contains(out, "Available: 1") || !strings.Contains(out, "Max: 1") {
		t.Fatalf("empty status:\n%s", out)
	}
	step("", "lock") // the machine id
	step("", "lock", "--id", "0123456789abcdef0123456789abcdef")
	step("group is full", "lock", "--id", "other")
	out := step("", "status")
	for _, want := range []string{"Available: 0", "0123456789abcdef0123456789abcdef", "rebooting", "updatectl"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	if out := step("", "set-max", "3"); !strings.Contains(out, "Old-Max: 1") || !strings.Contains(out, "Max: 3") {
		t.Fatalf("set-max:\n%s", out)
	}
	step("", "lock", "--id", "other")
	step("", "--group", "db", "lock", "--id", "x") // another group
	out = step("", "status", "--json")
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if st.Max != 3 || st.Available != 1 || len(st.Holders) != 2 || st.Holders[0].Stale {
		t.Fatalf("status --json: %+v", st)
	}
	step("holder is alive", "reclaim", "other") // still within its reboot deadline
	step("not a holder", "reclaim", "nobody")
	step("", "unlock", "--id", "other")
	step("", "unlock", "--id", "other") // idempotent
	step("", "unlock")
	if out := step("", "status"); !strings.Contains(out, "Available: 3") {
		t.Fatalf("after unlock:\n%s", out)
	}

	// --wait waits for a slot.
	step("", "set-max", "1")
	step("", "lock", "--id", "first")
	done := make(chan error, 1)
	waits := make(chan struct{})
	go func() {
		cfg, err := parseLockFlags([]string{"lock", "--wait", "--id", "second"}, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			done <- err
			return
		}
		cfg.machineIDFile = filepath.Join(t.TempDir(), "machine-id")
		done <- lockMain(t.Context(), cfg, &signalWriter{match: "waiting:", seen: waits})
	}()
	select {
	case err := <-done:
		t.Fatalf("lock --wait returned while the group is full: %v", err)
	case <-waits:
	}
	step("", "unlock", "--id", "first")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("lock --wait never got the slot")
	}
}

func TestLockBadInput(t *testing.T) {
	ep := etcdtest.Start(t)
	env := map[string]string{"LOCKSMITHCTL_ENDPOINT": ep} // locksmithctl's name works too
	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{name: "no command", args: nil, usage: true, want: "needs a command"},
		{name: "unknown command", args: []string{"reboot"}, usage: true, want: "unknown lock command"},
		{name: "set-max without N", args: []string{"set-max"}, usage: true, want: "takes 1 argument"},
		{name: "set-max not a number", args: []string{"set-max", "three"}, usage: true, want: "not a number"},
		{name: "set-max zero", args: []string{"set-max", "0"}, want: "at least 1"},
		{name: "set-max negative", args: []string{"set-max", "--", "-2"}, want: "at least 1"},
		{name: "group with slash", args: []string{"--group", "a/b", "status"}, want: "invalid group name"},
		{name: "unicode group", args: []string{"--group", "grüppe", "status"}, want: "invalid group name"},
		{name: "id with slash", args: []string{"lock", "--id", "a/b"}, want: "invalid holder id"},
		{name: "reclaim two ids", args: []string{"reclaim", "a", "b"}, usage: true, want: "takes 1 argument"},
		{name: "bad flag", args: []string{"status", "--nope"}, usage: true, want: "nope"},
		{name: "cert without key", args: []string{"status", "--cert", "/x.pem"}, want: "without its key"},
		{name: "missing CA file", args: []string{"status", "--cacert", "/nonexistent/ca.pem"}, want: "etcd CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runLockT(t, env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%v: %v, want %q", tt.args, err, tt.want)
			}
			if errors.Is(err, errUsage) != tt.usage {
				t.Fatalf("%v: usage error %v, want %v", tt.args, errors.Is(err, errUsage), tt.usage)
			}
		})
	}
	t.Run("garbage in etcd", func(t *testing.T) {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		ctx := t.Context()
		if _, err := cli.Put(ctx, "/switchyard/rebootlock/groups/junk/holders/ghost", "\xff not json"); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, "/switchyard/rebootlock/groups/junk/config", "max=2"); err != nil {
			t.Fatal(err)
		}
		out, err := runLockT(t, env, "--group", "junk", "status")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"MALFORMED holder ghost (counted as a holder)", "CONFIG ERROR"} {
			if !strings.Contains(out, want) {
				t.Fatalf("status lacks %q:\n%s", want, out)
			}
		}
		if _, err := runLockT(t, env, "--group", "junk", "lock", "--id", "h"); err == nil || !strings.Contains(err.Error(), "unreadable group config") {
			t.Fatalf("lock with garbage config: %v", err)
		}
		if _, err := runLockT(t, env, "--group", "junk", "set-max", "2"); err != nil {
			t.Fatal(err)
		}
		if _, err := runLockT(t, env, "--group", "junk", "lock", "--id", "h"); err != nil {
			t.Fatalf("lock after set-max repaired the config: %v", err)
		}
		if _, err := runLockT(t, env, "--group", "junk", "lock", "--id", "h2"); err == nil || !strings.Contains(err.Error(), "full") {
			t.Fatalf("the garbage holder must count: %v", err)
		}
	})
	t.Run("etcd unreachable", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		start := time.Now()
		_, err := runLockT(t, map[string]string{}, "status", "--endpoints", addr, "--timeout", "500ms")
		if err == nil || !strings.Contains(err.Error(), "reading group") {
			t.Fatalf("status without etcd: %v", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("took %v", time.Since(start))
		}
	})
}

func TestLockEnvPrecedence(t *testing.T) {
	env := map[string]string{
		"LOCKSMITHCTL_ENDPOINT":    "http://locksmith:2379",
		"LOCKSMITHCTL_GROUP":       "ls",
		"LOCKSMITHCTL_ETCD_CAFILE": "/ls-ca.pem",
		"UPDATECTL_ETCD_CACERT":    "/ours-ca.pem",
		"UPDATECTL_ETCD_KEY":       "/key.pem",
		"UPDATECTL_ETCD_USERNAME":  "root",
	}
	cfg, err := parseLockFlags([]string{"status", "--group", "flag"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.endpoints != "http://locksmith:2379" || cfg.group != "flag" || cfg.caFile != "/ours-ca.pem" ||
		cfg.keyFile != "/key.pem" || cfg.certFile != "" || cfg.username != "root" {
		t.Fatalf("config %+v", cfg)
	}
}

func TestLockTLS(t *testing.T) {
	pki := etcdtest.NewPKI(t)
	t.Run("CA only", func(t *testing.T) {
		ep := etcdtest.StartTLS(t, &transport.TLSInfo{CertFile: pki.ServerCert, KeyFile: pki.ServerKey})
		env := map[string]string{"UPDATECTL_ETCD_ENDPOINTS": ep}
		if _, err := runLockT(t, env, "status", "--cacert", pki.CA); err != nil {
			t.Fatalf("CA only: %v", err)
		}
		if _, err := runLockT(t, env, "status", "--timeout", "1s"); err == nil {
			t.Fatal("a server signed by an unknown CA was trusted")
		}
	})
	t.Run("client certificate", func(t *testing.T) {
		ep := etcdtest.StartTLS(t, &transport.TLSInfo{
			CertFile: pki.ServerCert, KeyFile: pki.ServerKey, TrustedCAFile: pki.CA, ClientCertAuth: true,
		})
		env := map[string]string{"UPDATECTL_ETCD_ENDPOINTS": ep, "LOCKSMITHCTL_ETCD_CAFILE": pki.CA}
		if _, err := runLockT(t, env, "lock", "--id", "tls-host", "--timeout", "1s"); err == nil {
			t.Fatal("locked without the client certificate")
		}
		if _, err := runLockT(t, env, "lock", "--id", "tls-host", "--cert", pki.ClientCert, "--key", pki.ClientKey); err != nil {
			t.Fatalf("with client certificate: %v", err)
		}
		out, err := runLockT(t, env, "status", "--cert", pki.ClientCert, "--key", pki.ClientKey)
		if err != nil || !strings.Contains(out, "tls-host") {
			t.Fatalf("status over TLS: %v\n%s", err, out)
		}
	})
}

// signalWriter closes seen the first time a write contains match.
type signalWriter struct {
	match string
	seen  chan struct{}
	once  sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), w.match) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// TestLockPasswordNotInUsage: the etcd password from the environment is used, and neither
// a help text nor a usage error prints it.
func TestLockPasswordNotInUsage(t *testing.T) {
	const secret = "s3cret-marker"
	env := map[string]string{"UPDATECTL_ETCD_PASSWORD": secret}
	for _, args := range [][]string{{"-h"}, {"status", "--frobnicate"}, {"frobnicate"}} {
		var errb bytes.Buffer
		_, err := parseLockFlags(args, func(k string) string { return env[k] }, &errb)
		if err == nil {
			t.Fatalf("%q: no usage error", args)
		}
		if strings.Contains(errb.String(), secret) || strings.Contains(err.Error(), secret) {
			t.Errorf("%q prints the password:\n%s%v", args, errb.String(), err)
		}
	}
	cfg, err := parseLockFlags([]string{"status"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || cfg.password != secret {
		t.Fatalf("password from the environment = %q, %v", cfg.password, err)
	}
}

// errHelpShown is what parseLockFlags returns when the arguments asked for help.
var errHelpShown = errors.New("help shown")

// parseLockFlags runs `updatectl lock ARGS` with the environment getenv up to the point
// where the job would run, and returns the configuration it would run with. Help and
// usage errors go to out.
func parseLockFlags(args []string, getenv func(string) string, out io.Writer) (lockConfig, error) {
	var cfg lockConfig
	ran := false
	root := usage.Group(&cobra.Command{Use: "updatectl"}, newLockCmd(getenv, func(_ context.Context, c lockConfig, _ io.Writer) error {
		cfg, ran = c, true
		return nil
	}))
	err := usage.Execute(context.Background(), root, append([]string{"lock"}, args...), out, out)
	if err == nil && !ran {
		err = errHelpShown
	}
	return cfg, err
}
