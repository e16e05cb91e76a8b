package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/cmd/internal/usage/usagetest"
)

func TestHelpPrintsOneUsageBlock(t *testing.T) {
	cases := [][]string{{"--help"}, {"-h"}, {"help"}, {"gpt", "--help"}, {"gpt", "help"}}
	leaves := [][]string{{"status"}, {"check"}, {"watch"}, {"mark-good"}, {"rollback"}, {"install"}, {"reset-status"},
		{"lock"}, {"lock", "status"}, {"lock", "set-max"}}
	for _, c := range []string{"show", "set", "prioritize", "next", "mark-good", "prepare", "flip", "rollback", "repair"} {
		leaves = append(leaves, []string{"gpt", c})
	}
	for _, l := range leaves {
		cases = append(cases, append(append([]string{}, l...), "--help"), append(append([]string{}, l...), "-h"))
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if err := run(context.Background(), args, &out, &errb); err != nil {
				t.Fatalf("run = %v, want nil (exit 0)", err)
			}
			if n := strings.Count(out.String(), "usage:"); n != 1 {
				t.Errorf("stdout has %d usage blocks, want 1:\n%s", n, out.String())
			}
			if errb.Len() != 0 {
				t.Errorf("stderr: %q", errb.String())
			}
		})
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"gpt", "show", "--help"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"updatectl gpt show DISK", "--json", "--sector-size"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("gpt show --help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUsageErrorIsOneLineWithHint(t *testing.T) {
	tests := []struct {
		args     []string
		wantLine string
		wantHint string
	}{
		{[]string{"gpt", "show", "--bogus"}, "updatectl: unknown flag: --bogus", "run 'updatectl gpt show --help' for usage"},
		{[]string{"gpt", "show"}, "updatectl: gpt show: want exactly one DISK, got 0 arguments", "run 'updatectl gpt show --help' for usage"},
		{[]string{"install"}, "updatectl: install takes one PATH (a release directory or tar file)", "run 'updatectl install --help' for usage"},
		{[]string{"status", "--nope"}, "updatectl: unknown flag: --nope", "run 'updatectl status --help' for usage"},
		{[]string{"lock", "reboot"}, `updatectl: unknown lock command "reboot"`, "run 'updatectl lock --help' for usage"},
		{[]string{"frob"}, `updatectl: unknown command "frob"`, "run 'updatectl --help' for usage"},
		{nil, "updatectl: no command given", "run 'updatectl --help' for usage"},
		{[]string{"gpt", "frob"}, `updatectl: unknown command "gpt frob"`, "run 'updatectl gpt --help' for usage"},
		{[]string{"gpt", "set", "-i"}, "updatectl: flag needs an argument: 'i' in -i", "run 'updatectl gpt set --help' for usage"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			usagetest.UsageError(t, "updatectl", run, tt.args, tt.wantLine+"\n"+tt.wantHint+"\n")
		})
	}
}

func TestVersion(t *testing.T) { usagetest.Version(t, "updatectl", run) }

// TestLockHelpHidesPassword: the etcd password from the environment is no flag default
// that help would print, and it still reaches the configuration.
func TestLockHelpHidesPassword(t *testing.T) {
	const marker = "SECRET-MARKER-77c1"
	env := map[string]string{"LOCKSMITHCTL_ETCD_PASSWORD": marker}
	var out bytes.Buffer
	if _, err := parseLockFlags([]string{"--help"}, func(k string) string { return env[k] }, &out); err != errHelpShown {
		t.Fatalf("--help: %v, want the help shown", err)
	}
	if strings.Contains(out.String(), marker) || !strings.Contains(out.String(), "--password") {
		t.Errorf("lock --help:\n%s", out.String())
	}
	cfg, err := parseLockFlags([]string{"status"}, func(k string) string { return env[k] }, &out)
	if err != nil || cfg.password != marker {
		t.Errorf("password from the environment: %q, %v", cfg.password, err)
	}
	cfg, err = parseLockFlags([]string{"status", "--password", "flag"}, func(k string) string { return env[k] }, &out)
	if err != nil || cfg.password != "flag" {
		t.Errorf("--password wins over the environment: %q, %v", cfg.password, err)
	}
}

func TestSingleDashFlags(t *testing.T) {
	// update_engine_client and cgpt habits: -socket S, -i N, -json.
	usagetest.UsageError(t, "updatectl", run, []string{"gpt", "set", "-sector-size", "512", "-i", "3"},
		"updatectl: gpt set: want exactly one DISK, got 0 arguments\nrun 'updatectl gpt set --help' for usage\n")
	cfg, err := parseLockFlags([]string{"-group", "g1", "status", "-timeout=3s", "-json"}, func(string) string { return "" }, io.Discard)
	if err != nil || cfg.group != "g1" || cfg.timeout != 3*time.Second || !cfg.asJSON || cfg.command != "status" {
		t.Errorf("lock -group g1 status -timeout=3s -json: %+v, %v", cfg, err)
	}
}

func TestLeafHelpListsFlags(t *testing.T) {
	usagetest.Help(t, run, []string{"gpt", "set"}, "i", "priority", "tries", "successful", "sector-size")
	usagetest.Help(t, run, []string{"check"}, "socket", "wait", "json")
	usagetest.Help(t, run, []string{"lock"}, "endpoints", "group", "password", "timeout")
	usagetest.Help(t, run, []string{"install"}, "socket")
}

func TestCompletion(t *testing.T) {
	usagetest.Completion(t, "updatectl", run, "status", "check", "watch", "mark-good", "rollback", "install", "reset-status", "gpt", "lock")
}

func TestManPages(t *testing.T) {
	usagetest.ManPages(t, run, map[string][]string{
		"updatectl.1":            nil,
		"updatectl-gpt-set.1":    {"i", "priority", "sector-size"},
		"updatectl-lock.1":       {"endpoints", "password"},
		"updatectl-status.1":     {"socket", "json"},
		"updatectl-install.1":    {"socket"},
		"updatectl-gpt-repair.1": {"sector-size"},
	})
}

func TestCommandsDoc(t *testing.T) { usagetest.CommandsDoc(t, "updatectl", usage.Markdown(newRoot())) }
