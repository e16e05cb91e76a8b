package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/cmd/internal/usage/usagetest"
)

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-once", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if err := run(context.Background(), args, &out, &errb); err != nil {
				t.Fatalf("run = %v, want nil (exit 0)", err)
			}
			if strings.Count(out.String(), "usage:") != 1 || !strings.Contains(out.String(), "--config") || !strings.Contains(out.String(), "--server") {
				t.Errorf("want one usage block with the flags:\n%s", out.String())
			}
			if errb.Len() != 0 {
				t.Errorf("stderr: %q", errb.String())
			}
		})
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--version"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "update-engine ") || !strings.Contains(got, "(commit ") {
		t.Errorf("--version printed %q", got)
	}
}

func TestUsageErrorIsOneLineWithHint(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "update-engine: flag provided but not defined: -bogus\nrun 'update-engine --help' for usage\n"},
		{[]string{"extra"}, "update-engine: unexpected arguments [\"extra\"]\nrun 'update-engine --help' for usage\n"},
		{[]string{"-once", "-post-boot"}, "update-engine: -once and -post-boot exclude each other\nrun 'update-engine --help' for usage\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			usagetest.UsageError(t, "update-engine", run, tt.args, tt.want)
		})
	}
}
