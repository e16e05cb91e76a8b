package usage

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
)

func newFS() *flag.FlagSet {
	fs := flag.NewFlagSet("release publish", flag.ContinueOnError)
	fs.String("file", "", "payload file")
	fs.String("board", "amd64-usr", "board")
	fs.Duration("http-timeout", 0, Hidden+"old name of --timeout")
	return fs
}

func TestParseHelp(t *testing.T) {
	var out bytes.Buffer
	err := Parse(newFS(), []string{"--help"}, &out, "syctl release publish [flags]")
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(--help) = %v, want flag.ErrHelp", err)
	}
	got := out.String()
	if strings.Count(got, "usage:") != 1 || !strings.Contains(got, "--file") || !strings.Contains(got, `(default "amd64-usr")`) {
		t.Errorf("help output:\n%s", got)
	}
	if strings.Contains(got, "http-timeout") {
		t.Errorf("help lists the hidden flag:\n%s", got)
	}
}

func TestParseBadFlag(t *testing.T) {
	var out bytes.Buffer
	err := Parse(newFS(), []string{"--nope"}, &out, "x")
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "-nope") {
		t.Fatalf("Parse(--nope) = %v, want a usage error naming the flag", err)
	}
	if out.Len() != 0 {
		t.Errorf("Parse printed %q on a bad flag", out.String())
	}
	if err := Parse(newFS(), []string{"--http-timeout", "5s"}, &out, "x"); err != nil {
		t.Errorf("hidden flag refused: %v", err)
	}
}

func TestReport(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantOut  string
	}{
		{name: "nil", err: nil, wantCode: 0},
		{name: "help", err: InCommand("app list", flag.ErrHelp), wantCode: 0},
		{name: "usage", err: InCommand("release", InCommand("release publish", fmt.Errorf("%w: missing --version\nmore", ErrUsage))),
			wantCode: 2, wantOut: "syctl: missing --version\nrun 'syctl release publish --help' for usage\n"},
		{name: "usage, top level", err: fmt.Errorf("%w: no command given", ErrUsage),
			wantCode: 2, wantOut: "syctl: no command given\nrun 'syctl --help' for usage\n"},
		{name: "failure", err: InCommand("app list", errors.New("adminclient: 500")), wantCode: 1, wantOut: "syctl: adminclient: 500\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := Report(&out, "syctl", tt.err); code != tt.wantCode || out.String() != tt.wantOut {
				t.Errorf("Report = %d, %q; want %d, %q", code, out.String(), tt.wantCode, tt.wantOut)
			}
		})
	}
}
