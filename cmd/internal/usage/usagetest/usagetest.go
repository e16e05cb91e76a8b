// Package usagetest checks the command-line rules of package usage on a binary's run
// function, for the tests of the four commands: a usage error is returned, not printed, and
// main reports it as one line plus the --help hint with exit status 2. Only tests import it.
package usagetest

import (
	"bytes"
	"context"
	"errors"
	"io"
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
