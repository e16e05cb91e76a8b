// Package usagetest checks the command-line rules of package usage on a binary's run
// function, for the tests of the four commands: a usage error is returned, not printed, and
// main reports it as one line plus the --help hint with exit status 2; --version, the
// completion scripts, the man pages and the binary's section of docs/commands.md. Only
// tests import it.
package usagetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
)

// Run is a command's run(ctx, args, stdout, stderr).
type Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// UsageError runs prog with args and requires a usage error that run itself does not
// print and that usage.Report turns into exactly want (the line and the hint) and status 2.
func UsageError(t *testing.T, prog string, run Run, args []string, want string) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	if !errors.Is(err, usage.ErrUsage) {
		t.Fatalf("%s %q = %v, want a usage error", prog, args, err)
	}
	if out.Len() != 0 || errb.Len() != 0 {
		t.Errorf("%s %q printed stdout %q, stderr %q; only main reports", prog, args, out.String(), errb.String())
	}
	var rep bytes.Buffer
	if code := usage.Report(&rep, prog, err); code != 2 || rep.String() != want {
		t.Errorf("%s %q: Report = %d, %q; want 2, %q", prog, args, code, rep.String(), want)
	}
}

// Version requires `prog --version` to print one line naming prog and its commit.
func Version(t *testing.T, prog string, run Run) {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--version"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, prog+" ") || !strings.Contains(got, "(commit ") || strings.Count(got, "\n") != 1 {
		t.Errorf("--version printed %q", got)
	}
}

// Help requires `prog ARGS... --help` to exit 0 and print one usage block on stdout that
// names every flag in flags.
func Help(t *testing.T, run Run, args []string, flags ...string) {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(context.Background(), append(append([]string{}, args...), "--help"), &out, &errb); err != nil {
		t.Fatalf("%q --help = %v, want nil (exit 0)", args, err)
	}
	s := out.String()
	if strings.Count(s, "usage:") != 1 || errb.Len() != 0 {
		t.Errorf("%q --help: want one usage block, nothing on stderr; got\n%s\nstderr %q", args, s, errb.String())
	}
	for _, f := range flags {
		if !strings.Contains(s, "--"+f+" ") {
			t.Errorf("%q --help lacks --%s:\n%s", args, f, s)
		}
	}
}

// Completion requires `prog completion bash|zsh|fish` to print a script for prog, and the
// completion request those scripts send (`prog __complete ""`) to offer every command in
// commands.
func Completion(t *testing.T, prog string, run Run, commands ...string) {
	t.Helper()
	for _, sh := range []string{"bash", "zsh", "fish"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"completion", sh}, &out, io.Discard); err != nil {
			t.Fatalf("completion %s: %v", sh, err)
		}
		if s := out.String(); len(s) < 500 || !strings.Contains(s, prog+" __complete") && !strings.Contains(s, "__complete") {
			t.Errorf("completion %s: not a completion script for %s:\n%.300s", sh, prog, s)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"__complete", ""}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	offered := map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		name, _, _ := strings.Cut(line, "\t")
		offered[name] = true
	}
	for _, c := range append([]string{"completion"}, commands...) {
		if !offered[c] {
			t.Errorf("completion offers no %q after %s:\n%s", c, prog, out.String())
		}
	}
}

// ManPages runs the hidden `prog man DIR` and requires a page per command in pages (file
// names such as "syctl-release-publish.1"), each page naming the flags listed with it.
func ManPages(t *testing.T, run Run, pages map[string][]string) {
	t.Helper()
	dir := t.TempDir()
	if err := run(context.Background(), []string{"man", dir}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	for page, flags := range pages {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Errorf("man page: %v", err)
			continue
		}
		if !strings.HasPrefix(string(b), ".nh\n.TH ") || !strings.Contains(string(b), ".SH OPTIONS") {
			t.Errorf("%s is not a man page with options:\n%.300s", page, b)
		}
		for _, f := range flags {
			if !strings.Contains(string(b), `\fB--`+f+`\fP`) {
				t.Errorf("%s lacks --%s", page, f)
			}
		}
	}
}

// CommandsDoc requires prog's section of docs/commands.md (between the lines
// "<!-- BEGIN prog -->" and "<!-- END prog -->") to be md, the Markdown generated from the
// command tree. With SWITCHYARD_UPDATE_DOCS=1 in the environment it rewrites the section.
func CommandsDoc(t *testing.T, prog, md string) {
	t.Helper()
	file := filepath.Join("..", "..", "docs", "commands.md")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	begin, end := "<!-- BEGIN "+prog+" -->\n", "<!-- END "+prog+" -->\n"
	before, rest, ok1 := strings.Cut(string(b), begin)
	section, after, ok2 := strings.Cut(rest, end)
	if !ok1 || !ok2 {
		t.Fatalf("%s has no section %q … %q", file, begin, end)
	}
	if section == md {
		return
	}
	if os.Getenv("SWITCHYARD_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(file, []byte(before+begin+md+end+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is out of date for %s: run make commands-doc", file, prog)
}
