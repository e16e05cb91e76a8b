package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/omaha"
	"github.com/switchyard-os/switchyard/omaha-server/auth"
	"github.com/switchyard-os/switchyard/omaha-server/server"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/store/sqlite"
)

type adminEnv struct {
	t                   *testing.T
	url, cacert         string
	adminTok, viewerTok string
	st                  store.Store
	srv                 *httptest.Server
}

func newAdminEnv(t *testing.T) *adminEnv {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := server.New(ctx, server.Config{DataDir: dir}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	srv := httptest.NewTLSServer(s)
	t.Cleanup(srv.Close)
	e := &adminEnv{t: t, url: srv.URL, st: st, srv: srv, cacert: filepath.Join(dir, "ca.pem")}
	os.WriteFile(e.cacert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	for _, r := range []store.Role{store.RoleAdmin, store.RoleViewer} {
		tok, hash, _ := auth.NewToken()
		if _, err := st.CreateToken(ctx, store.Token{Hash: hash, Role: r}); err != nil {
			t.Fatal(err)
		}
		if r == store.RoleAdmin {
			e.adminTok = tok
		} else {
			e.viewerTok = tok
		}
	}
	return e
}

// syctl runs one syctl command against the server with the admin token.
func (e *adminEnv) syctl(args ...string) (string, error) {
	return e.syctlAs(e.adminTok, args...)
}

func (e *adminEnv) syctlAs(tok string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	args = append(args, "--server", e.url, "--token", tok, "--cacert", e.cacert)
	err := run(context.Background(), args, &out, &errb)
	return out.String(), err
}

func (e *adminEnv) must(args ...string) string {
	e.t.Helper()
	out, err := e.syctl(args...)
	if err != nil {
		e.t.Fatalf("syctl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestAdminCommands(t *testing.T) {
	e := newAdminEnv(t)
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	file := filepath.Join(t.TempDir(), "flatcar_production_update.gz")
	os.WriteFile(file, payload, 0o644)
	sum := sha256.Sum256(payload)

	e.must("app", "create", "--id", omaha.FlatcarAppID, "--name", "Flatcar")
	if out := e.must("app", "list"); !strings.Contains(out, store.FlatcarAppID) || !strings.Contains(out, "Flatcar") {
		t.Errorf("app list:\n%s", out)
	}
	out := e.must("release", "publish", "--version", "4081.2.0", "--board", "amd64-usr", "--file", file)
	if !strings.Contains(out, hex.EncodeToString(sum[:])) {
		t.Errorf("publish output lacks the SHA-256:\n%s", out)
	}
	e.must("release", "publish", "--version", "4081.3.0", "--url", "https://mirror.example/4081.3.0/flatcar_production_update.gz",
		"--size", "1000", "--sha256", strings.Repeat("ab", 32))
	if out := e.must("release", "list"); !strings.Contains(out, "4081.2.0") || !strings.Contains(out, "mirror.example") {
		t.Errorf("release list:\n%s", out)
	}
	e.must("channel", "create", "--name", "stable")
	if out := e.must("channel", "set", "--name", "stable", "--version", "4081.2.0"); !strings.Contains(out, "offers 4081.2.0 on amd64-usr") {
		t.Errorf("channel set:\n%s", out)
	}
	if out := e.must("channel", "list"); !strings.Contains(out, "stable") || !strings.Contains(out, "4081.2.0") {
		t.Errorf("channel list:\n%s", out)
	}
	e.must("group", "create", "--name", "prod", "--track", "stable", "--channel", "stable")
	if out := e.must("group", "update", "--name", "prod", "--updates", "off"); !strings.Contains(out, "updates off") {
		t.Errorf("group update:\n%s", out)
	}
	e.must("group", "update", "--name", "prod", "--updates", "on")
	if out := e.must("group", "list"); !strings.Contains(out, "prod") || !strings.Contains(out, "on") {
		t.Errorf("group list:\n%s", out)
	}

	// A host checks in through the real Omaha endpoint, then shows up.
	req := omaha.NewUpdateCheckRequest(omaha.Host{Version: "4081.1.0", Track: "stable", Board: "amd64-usr", MachineID: "abc123", BootID: "{b}"}, false)
	body, _ := req.Marshal()
	resp, err := e.srv.Client().Post(e.url+"/v1/update/", "text/xml", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if out := e.must("instance", "list", "--group", "prod"); !strings.Contains(out, "abc123") || !strings.Contains(out, "update-granted") {
		t.Errorf("instance list:\n%s", out)
	}
	var list []store.Instance
	if err := json.Unmarshal([]byte(e.must("instance", "list", "--status", "update-granted", "--json")), &list); err != nil || len(list) != 1 {
		t.Errorf("instance list --json: %v %+v", err, list)
	}
	if out := e.must("instance", "list", "--version", "9.9.9"); strings.Contains(out, "abc123") {
		t.Errorf("version filter ignored:\n%s", out)
	}
	if out := e.must("instance", "show", "abc123"); !strings.Contains(out, "history") || !strings.Contains(out, "update-granted") {
		t.Errorf("instance show:\n%s", out)
	}
	var detail []store.InstanceDetail
	if err := json.Unmarshal([]byte(e.must("instance", "show", "abc123", "--json")), &detail); err != nil || len(detail[0].History) == 0 {
		t.Errorf("instance show --json: %v %+v", err, detail)
	}
	// The upload is served byte for byte.
	got, err := e.srv.Client().Get(e.url + "/packages/" + store.FlatcarAppID + "/amd64-usr/4081.2.0/flatcar_production_update.gz")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(got.Body)
	got.Body.Close()
	if !bytes.Equal(buf.Bytes(), payload) {
		t.Error("served payload differs from the uploaded file")
	}
}

func TestAdminErrors(t *testing.T) {
	e := newAdminEnv(t)
	e.must("app", "create", "--id", omaha.FlatcarAppID, "--name", "Flatcar")
	file := filepath.Join(t.TempDir(), "p.gz")
	os.WriteFile(file, []byte("payload"), 0o644)
	e.must("release", "publish", "--version", "1.0.0", "--file", file)
	tests := []struct {
		name    string
		tok     string
		args    []string
		usage   bool
		message string
	}{
		{"duplicate release", "", []string{"release", "publish", "--version", "1.0.0", "--file", file}, false, "409"},
		{"viewer may not write", "viewer", []string{"channel", "create", "--name", "x"}, false, "403"},
		{"bad token", "syt_nope", []string{"app", "list"}, false, "401"},
		{"unknown app", "", []string{"group", "list", "--app", "nope"}, false, "404"},
		{"unknown channel", "", []string{"channel", "set", "--name", "nope", "--version", "1.0.0"}, false, "404"},
		{"bad version", "", []string{"release", "publish", "--version", "one", "--file", file}, false, "400"},
		{"file and url", "", []string{"release", "publish", "--version", "2.0.0", "--file", file, "--url", "https://x/y"}, true, ""},
		{"url without sha256", "", []string{"release", "publish", "--version", "2.0.0", "--url", "https://x/y", "--size", "3"}, true, ""},
		{"missing name", "", []string{"channel", "create"}, true, ""},
		{"bad updates", "", []string{"group", "update", "--name", "g", "--updates", "maybe"}, true, ""},
		{"unknown subcommand", "", []string{"group", "delete"}, true, ""},
		{"show without id", "", []string{"instance", "show"}, true, ""},
		{"missing file", "", []string{"release", "publish", "--version", "3.0.0", "--file", "/nonexistent"}, false, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := e.adminTok
			switch tt.tok {
			case "viewer":
				tok = e.viewerTok
			case "":
			default:
				tok = tt.tok
			}
			_, err := e.syctlAs(tok, tt.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, errUsage) != tt.usage {
				t.Errorf("usage error = %v, want %v: %v", errors.Is(err, errUsage), tt.usage, err)
			}
			if !strings.Contains(err.Error(), tt.message) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line containing %q", err, tt.message)
			}
		})
	}
	// Without --cacert the self-signed server is refused.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"app", "list", "--server", e.url, "--token", e.adminTok}, &out, &out); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("no --cacert: %v", err)
	}
	// The environment supplies server and token.
	t.Setenv("SYCTL_SERVER", e.url)
	t.Setenv("SYCTL_TOKEN", e.adminTok)
	if err := run(context.Background(), []string{"app", "list", "--cacert", e.cacert}, &out, &out); err != nil {
		t.Errorf("with SYCTL_SERVER and SYCTL_TOKEN: %v", err)
	}
}
