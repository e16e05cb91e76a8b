package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
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
		{[]string{"--bogus"}, "omaha-server: unknown flag: --bogus\nrun 'omaha-server serve --help' for usage\n"},
		{[]string{"token", "create", "--role", "root"}, "omaha-server: --role must be admin or viewer\nrun 'omaha-server token create --help' for usage\n"},
		{[]string{"tokens"}, "omaha-server: unknown command \"tokens\"\nrun 'omaha-server --help' for usage\n"},
		{[]string{"-listen", "127.0.0.1:0", "-bogus"}, "omaha-server: unknown shorthand flag: 'b' in -bogus\nrun 'omaha-server serve --help' for usage\n"},
		{[]string{"serve", "extra"}, "omaha-server: unexpected argument \"extra\"\nrun 'omaha-server serve --help' for usage\n"},
		{[]string{"token"}, "omaha-server: token needs a command\nrun 'omaha-server token --help' for usage\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			usagetest.UsageError(t, "omaha-server", run, tt.args, tt.want)
		})
	}
}

func TestLeafHelpListsFlags(t *testing.T) {
	usagetest.Help(t, run, []string{"serve"}, "listen", "data-dir", "db", "tls-cert", "tuf-key", "fleetlock-etcd", "retain-events", "host-identity")
	usagetest.Help(t, run, []string{"token", "create"}, "role", "name", "expires", "data-dir", "db")
	usagetest.Help(t, run, []string{"token", "list"}, "json")
}

func TestCompletion(t *testing.T) {
	usagetest.Completion(t, "omaha-server", run, "serve", "token")
}

func TestManPages(t *testing.T) {
	usagetest.ManPages(t, run, map[string][]string{
		"omaha-server.1":              nil,
		"omaha-server-serve.1":        {"listen", "data-dir", "tuf-key", "retain-events"},
		"omaha-server-token-create.1": {"role", "expires"},
		"omaha-server-token-revoke.1": {"data-dir"},
	})
}

func TestCommandsDoc(t *testing.T) {
	usagetest.CommandsDoc(t, "omaha-server", usage.Markdown(newRoot(time.Now, nil)))
}
