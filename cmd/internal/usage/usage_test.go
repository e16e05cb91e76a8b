package usage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// testTree is a small binary: `prog [--listen A] [--once]` and `prog release publish
// --file F [--timeout D] [-n N]`, which records what ran in *got.
func testTree(got *[]string) *cobra.Command {
	root := &cobra.Command{Use: "prog", Short: "a test program", Args: NoArgs}
	root.Flags().String("listen", ":8080", "address")
	root.Flags().Bool("once", false, "once")
	root.RunE = func(c *cobra.Command, args []string) error {
		l, _ := c.Flags().GetString("listen")
		once, _ := c.Flags().GetBool("once")
		*got = append(*got, fmt.Sprintf("root listen=%s once=%v", l, once))
		return nil
	}
	pub := &cobra.Command{Use: "publish --file F", Short: "publish a release"}
	pub.Flags().String("file", "", "payload file")
	pub.Flags().Duration("timeout", 0, "give up after")
	pub.Flags().IntP("count", "n", 1, "count")
	pub.Flags().String("http-timeout", "", "old name")
	pub.Flags().MarkHidden("http-timeout")
	pub.RunE = Run(func(_ context.Context, args []string, stdout, _ io.Writer) error {
		f, _ := pub.Flags().GetString("file")
		n, _ := pub.Flags().GetInt("count")
		*got = append(*got, fmt.Sprintf("publish file=%s n=%d args=%q", f, n, args))
		return nil
	})
	root.AddCommand(Group(&cobra.Command{Use: "release COMMAND", Short: "releases"}, pub))
	return root
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		args, want []string
	}{
		{[]string{"-listen", ":1", "-once"}, []string{"--listen", ":1", "--once"}},
		{[]string{"-listen=:1"}, []string{"--listen=:1"}},
		{[]string{"release", "publish", "-file", "f", "-timeout=5s"}, []string{"release", "publish", "--file", "f", "--timeout=5s"}},
		// -file is publish's flag, not the root's: left alone before the subcommand.
		{[]string{"-file", "release"}, []string{"-file", "release"}},
		// A shorthand cluster, -h, a lone "-" and what follows "--" stay.
		{[]string{"release", "publish", "-n", "3", "-h", "-", "--", "-file"}, []string{"release", "publish", "-n", "3", "-h", "-", "--", "-file"}},
		// A flag's value that looks like a flag or a command is a value.
		{[]string{"-listen", "-once"}, []string{"--listen", "-once"}},
		{[]string{"-listen", "release", "-once"}, []string{"--listen", "release", "--once"}},
		{[]string{"-help"}, []string{"--help"}},
		{[]string{"release", "publish", "-nope"}, []string{"release", "publish", "-nope"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			root := testTree(new([]string))
			Setup(root)
			if got := Normalize(root, tt.args); !slices.Equal(got, tt.want) {
				t.Errorf("Normalize = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExecuteSingleDash(t *testing.T) {
	var got []string
	args := []string{"release", "publish", "-file=x", "-timeout", "1s", "pos", "-n", "2"}
	if err := Execute(context.Background(), testTree(&got), args, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := Execute(context.Background(), testTree(&got), []string{"-listen", ":9", "-once"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := []string{`publish file=x n=2 args=["pos"]`, "root listen=:9 once=true"}
	if !slices.Equal(got, want) {
		t.Errorf("ran %q, want %q", got, want)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"release", "publish", "--help"}, {"release", "publish", "-h"}, {"release", "publish", "-help"}, {"help", "release", "publish"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var got []string
			var out, errb bytes.Buffer
			if err := Execute(context.Background(), testTree(&got), args, &out, &errb); err != nil {
				t.Fatalf("Execute = %v, want nil (exit 0)", err)
			}
			s := out.String()
			if strings.Count(s, "usage:") != 1 || !strings.HasPrefix(s, "usage: prog release publish --file F [flags]\n") ||
				!strings.Contains(s, "--timeout duration") || !strings.Contains(s, "-n, --count int") {
				t.Errorf("help:\n%s", s)
			}
			if strings.Contains(s, "http-timeout") {
				t.Errorf("help lists the hidden flag:\n%s", s)
			}
			if errb.Len() != 0 || len(got) != 0 {
				t.Errorf("stderr %q, ran %q", errb.String(), got)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"release", "publish", "--nope"}, "prog: unknown flag: --nope\nrun 'prog release publish --help' for usage\n"},
		{[]string{"release", "publish", "--timeout", "soon"}, "prog: invalid argument \"soon\" for \"--timeout\" flag: time: invalid duration \"soon\"\nrun 'prog release publish --help' for usage\n"},
		{[]string{"release", "publish", "--file"}, "prog: flag needs an argument: --file\nrun 'prog release publish --help' for usage\n"},
		{[]string{"release", "frob"}, "prog: unknown command \"release frob\"\nrun 'prog release --help' for usage\n"},
		{[]string{"release"}, "prog: release needs a command\nrun 'prog release --help' for usage\n"},
		{[]string{"extra"}, "prog: unexpected argument \"extra\"\nrun 'prog --help' for usage\n"},
		{[]string{"completion", "tcsh"}, "prog: unknown command \"completion tcsh\"\nrun 'prog completion --help' for usage\n"},
		{[]string{"man"}, "prog: accepts 1 arg(s), received 0\nrun 'prog man --help' for usage\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var got []string
			var out, errb bytes.Buffer
			err := Execute(context.Background(), testTree(&got), tt.args, &out, &errb)
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("Execute = %v, want a usage error", err)
			}
			if out.Len() != 0 || errb.Len() != 0 || len(got) != 0 {
				t.Errorf("printed %q, %q; ran %q", out.String(), errb.String(), got)
			}
			var rep bytes.Buffer
			if code := Report(&rep, "prog", err); code != 2 || rep.String() != tt.want {
				t.Errorf("Report = %d, %q; want 2, %q", code, rep.String(), tt.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "-version"} {
		var out bytes.Buffer
		if err := Execute(context.Background(), testTree(new([]string)), []string{arg}, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if s := out.String(); !strings.HasPrefix(s, "prog ") || !strings.Contains(s, "(commit ") || strings.Count(s, "\n") != 1 {
			t.Errorf("%s printed %q", arg, s)
		}
	}
}

func TestCompletionAndMan(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		var out bytes.Buffer
		if err := Execute(context.Background(), testTree(new([]string)), []string{"completion", sh}, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "prog") || out.Len() < 500 {
			t.Errorf("completion %s: %d bytes", sh, out.Len())
		}
	}
	// What the scripts ask the binary: the subcommands for the word after "prog".
	var out bytes.Buffer
	if err := Execute(context.Background(), testTree(new([]string)), []string{"__complete", ""}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "release\treleases") {
		t.Errorf("__complete: %q", out.String())
	}

	dir := t.TempDir()
	if err := Execute(context.Background(), testTree(new([]string)), []string{"man", dir}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, "prog-release-publish.1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `\fB--file\fP`) || !strings.Contains(string(page), ".TH \"PROG-RELEASE-PUBLISH\" \"1\"") {
		t.Errorf("man page:\n%s", page)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	want := []string{"prog-completion-bash.1", "prog-completion-fish.1", "prog-completion-powershell.1", "prog-completion-zsh.1",
		"prog-completion.1", "prog-release-publish.1", "prog-release.1", "prog.1"}
	if !slices.Equal(names, want) {
		t.Errorf("man pages %q, want %q", names, want)
	}
}

func TestMarkdown(t *testing.T) {
	md := Markdown(testTree(new([]string)))
	for _, want := range []string{"### prog release publish\n\npublish a release\n\n```\nusage: prog release publish --file F [flags]\n", "--timeout duration", "### prog completion\n"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "### prog man") || strings.Contains(md, "### prog help") || strings.Contains(md, "### prog completion bash") {
		t.Errorf("markdown lists a hidden or helper command:\n%s", md)
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
