package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "update.conf")
	os.WriteFile(conf, []byte("GROUP=beta\nCHECK_INTERVAL=soon\n"), 0o644)
	good := filepath.Join(dir, "good.conf")
	os.WriteFile(good, []byte("GROUP=beta\n"), 0o644)
	tests := []struct {
		name    string
		args    []string
		usage   bool
		wantErr string
		wantOut string
	}{
		{name: "keys", args: []string{"-keys"}, wantOut: "LOCKSMITHD_REBOOT_WINDOW_START"},
		{name: "once and post-boot", args: []string{"-once", "-post-boot"}, usage: true},
		{name: "stray argument", args: []string{"now"}, usage: true},
		{name: "unknown flag", args: []string{"-frobnicate"}, usage: true},
		{name: "bad file", args: []string{"-config", conf}, wantErr: "CHECK_INTERVAL"},
		{name: "bad -set", args: []string{"-config", good, "-set", "NOEQUALS"}, wantErr: "KEY=VALUE"},
		{name: "bad strategy flag", args: []string{"-config", good, "-reboot-strategy", "whenever"}, wantErr: "unknown strategy"},
		{name: "no version", args: []string{"-config", good, "-once"}, wantErr: "running version is unknown"},
		{name: "no disk", args: []string{"-config", good, "-once", "-version", "1.0.0"}, wantErr: "no disk"},
		{name: "plain http refused", args: []string{"-config", good, "-once", "-version", "1.0.0", "-disk", "/dev/null",
			"-set", "MACHINE_ID=0123456789abcdef0123456789abcdef", "-server", "http://updates.example/v1/update/"}, wantErr: "plain HTTP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), tt.args, &out, &errOut)
			switch {
			case tt.usage:
				if !errors.Is(err, errUsage) {
					t.Fatalf("err = %v, want a usage error", err)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(out.String(), tt.wantOut) {
					t.Errorf("output lacks %q", tt.wantOut)
				}
			}
		})
	}
}
