package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/store"
	"github.com/switchyard-os/switchyard/omaha-server/webhook"
)

// TestServeNotifies: serve with two --notify-url receivers (one flag, a comma list) and a
// --notify-secret-file posts a pause made through the admin API to both, signed, and
// logs the activity entry as one JSON line naming the token.
func TestServeNotifies(t *testing.T) {
	dir := t.TempDir()
	secret := []byte("s3cret-for-hmac")
	if err := os.WriteFile(filepath.Join(dir, "secret"), append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	type call struct {
		path string
		sig  string
		body []byte
	}
	got := make(chan call, 8)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- call{r.URL.Path, r.Header.Get("X-Switchyard-Signature"), b}
	}))
	defer recv.Close()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"token", "create", "--data-dir", dir, "--role", "admin", "--name", "alice"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	tok := lines[len(lines)-1]
	addr, log, stop := serveInBackground(t, []string{"--data-dir", dir, "--listen", "127.0.0.1:0", "--log-format", "json",
		"--notify-url", recv.URL + "/a," + recv.URL + "/b", "--notify-secret-file", filepath.Join(dir, "secret")})
	c, err := adminclient.New("http://"+addr, tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, store.FlatcarAppID, "Flatcar"); err != nil {
		t.Fatal(err)
	}
	track := "stable"
	if _, err := c.CreateGroup(ctx, store.FlatcarAppID, adminapi.GroupInput{Name: "stable", Track: &track}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetPaused(ctx, store.FlatcarAppID, "stable", true); err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	for range 2 {
		select {
		case cl := <-got:
			var m webhook.Message
			if err := json.Unmarshal(cl.body, &m); err != nil || m.Type != webhook.TypePause || m.Actor != "alice" {
				t.Errorf("%s got %s (%v)", cl.path, cl.body, err)
			}
			if cl.sig != webhook.Sign(secret, cl.body) {
				t.Errorf("%s: signature %q does not verify under the file's secret", cl.path, cl.sig)
			}
			paths[cl.path] = true
		case <-time.After(10 * time.Second):
			t.Fatal("no webhook call within 10s")
		}
	}
	stop()
	if !paths["/a"] || !paths["/b"] {
		t.Errorf("receivers called: %v", paths)
	}
	var pause map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == "activity" && rec["action"] == "group.pause" {
			pause = rec
		}
	}
	if pause == nil || pause["actor"] != "alice" || pause["subject"] != "group/stable" || pause["after"] != `{"paused":true}` {
		t.Errorf("activity log line %v", pause)
	}
	if strings.Contains(log.String(), string(secret)) || strings.Contains(log.String(), tok) {
		t.Error("the log holds the webhook secret or the token")
	}
}

// TestServeNotifyFlagsRefused: bad webhook flags stop serve before it listens.
func TestServeNotifyFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	for _, tt := range []struct {
		args  []string
		usage bool
	}{
		{[]string{"--notify-url", "ftp://example.com/hook"}, false},
		{[]string{"--notify-secret", "x"}, true},
		{[]string{"--notify-url", "http://127.0.0.1:1/", "--notify-secret", "x", "--notify-secret-file", empty}, true},
		{[]string{"--notify-url", "http://127.0.0.1:1/", "--notify-secret-file", empty}, false},
		{[]string{"--notify-url", "http://127.0.0.1:1/", "--notify-secret-file", filepath.Join(dir, "missing")}, false},
	} {
		var out bytes.Buffer
		err := serve(context.Background(), append([]string{"--data-dir", dir, "--listen", "127.0.0.1:0"}, tt.args...), &out, &out,
			func(string) { t.Errorf("%v: serve started", tt.args) })
		if err == nil || errors.Is(err, errUsage) != tt.usage {
			t.Errorf("%v: %v (usage error wanted: %v)", tt.args, err, tt.usage)
		}
		if err != nil && strings.Contains(err.Error(), "x\"") {
			t.Errorf("%v: the error echoes the secret: %v", tt.args, err)
		}
	}
}
