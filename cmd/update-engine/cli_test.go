package main

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
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
		{[]string{"--bogus"}, "update-engine: unknown flag: --bogus\nrun 'update-engine --help' for usage\n"},
		{[]string{"extra"}, "update-engine: unexpected arguments [\"extra\"]\nrun 'update-engine --help' for usage\n"},
		{[]string{"-once", "-post-boot"}, "update-engine: -once and -post-boot exclude each other\nrun 'update-engine --help' for usage\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			usagetest.UsageError(t, "update-engine", run, tt.args, tt.want)
		})
	}
}

// TestSingleDashFlags: Flatcar's units and our VM images call update-engine -config FILE
// -once; the single-dash flags reach the configuration.
func TestSingleDashFlags(t *testing.T) {
	var got *flags
	var gotShort map[string]*string
	root := newRoot(func(_ context.Context, f *flags, short map[string]*string, _, _ io.Writer) error {
		got, gotShort = f, short
		return nil
	})
	args := []string{"-config", "/a.conf", "-config=/b.conf", "-once", "-set", "GROUP=beta", "-server", "https://x/v1/update/", "-log-json"}
	if err := usage.Execute(context.Background(), root, args, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got == nil || !slices.Equal(got.files, []string{"/a.conf", "/b.conf"}) || !got.once || !got.logJSON ||
		!slices.Equal(got.set, []string{"GROUP=beta"}) || *gotShort["SERVER"] != "https://x/v1/update/" {
		t.Errorf("flags %+v", got)
	}
	// -version VALUE is the running version's shortcut, not --version.
	root = newRoot(func(_ context.Context, f *flags, short map[string]*string, _, _ io.Writer) error {
		gotShort = short
		return nil
	})
	if err := usage.Execute(context.Background(), root, []string{"-version", "1.2.3", "-once"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if v := *gotShort["FLATCAR_RELEASE_VERSION"]; v != "1.2.3" {
		t.Errorf("-version 1.2.3: %q", v)
	}
}

func TestLeafHelpListsFlags(t *testing.T) {
	usagetest.Help(t, run, nil, "config", "set", "once", "post-boot", "server", "reboot-strategy", "keys")
}

func TestCompletion(t *testing.T) { usagetest.Completion(t, "update-engine", run) }

func TestManPages(t *testing.T) {
	usagetest.ManPages(t, run, map[string][]string{"update-engine.1": {"config", "once", "server", "disk"}})
}

func TestCommandsDoc(t *testing.T) {
	usagetest.CommandsDoc(t, "update-engine", usage.Markdown(newRoot(runDaemon)))
}
