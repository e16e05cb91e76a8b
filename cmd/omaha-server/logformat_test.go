package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestServeLogFormatJSON(t *testing.T) {
	_, log, stop := serveInBackground(t, []string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--log-format", "json"})
	stop()
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("serve logged nothing")
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		if rec["msg"] == nil || rec["level"] == nil {
			t.Errorf("no msg or level: %q", l)
		}
	}
}

func TestServeLogFormatRefused(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"serve", "--data-dir", t.TempDir(), "--log-format", "xml"}, &out, &out)
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--log-format") {
		t.Fatalf("--log-format xml: %v", err)
	}
}
