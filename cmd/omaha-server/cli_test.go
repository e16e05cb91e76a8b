package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/cmd/internal/usage/usagetest"
)

func TestHelpAndVersion(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"omaha-server [serve] [flags]", "token create"}},
		{[]string{"-h"}, []string{"omaha-server [serve] [flags]"}},
		{[]string{"serve", "--help"}, []string{"--listen", "--data-dir", "--tls-cert"}},
		{[]string{"--listen", "127.0.0.1:0", "-h"}, []string{"--listen"}},
		{[]string{"token", "create", "--help"}, []string{"--role", "--description"}},
		{[]string{"--version"}, []string{"omaha-server ", "(commit "}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if err := run(context.Background(), tt.args, &out, &errb); err != nil {
				t.Fatalf("run = %v, want nil (exit 0)", err)
			}
			if tt.args[0] != "--version" && strings.Count(out.String(), "usage:") != 1 {
				t.Errorf("want one usage block:\n%s", out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			if errb.Len() != 0 {
				t.Errorf("stderr: %q", errb.String())
			}
		})
	}
}

func TestUsageErrorIsOneLineWithHint(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "omaha-server: flag provided but not defined: -bogus\nrun 'omaha-server serve --help' for usage\n"},
		{[]string{"token", "create", "--role", "root"}, "omaha-server: --role must be admin or viewer\nrun 'omaha-server token create --help' for usage\n"},
		{[]string{"tokens"}, "omaha-server: unknown command \"tokens\"\nrun 'omaha-server --help' for usage\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			usagetest.UsageError(t, "omaha-server", run, tt.args, tt.want)
		})
	}
}
