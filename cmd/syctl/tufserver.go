package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/switchyard-os/switchyard/omaha-server/tufhost"
)

// runTUFPublishRoot uploads the next root (made by rotate-root and sign-root) to the server,
// which serves it once it verifies against the current root.
func runTUFPublishRoot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, a := newAdminFlagSet("tuf publish-root", stderr)
	rootFile := fs.String("root", "", "the signed root metadata to publish (e.g. REPO/root/2.root.json)")
	if err := parseLeaf(fs, args, stdout); err != nil {
		return err
	}
	if *rootFile == "" || fs.NArg() != 0 {
		return fmt.Errorf("%w: tuf publish-root takes --root FILE and no arguments", errUsage)
	}
	data, err := os.ReadFile(*rootFile)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	st, err := c.PublishTUFRoot(ctx, data)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "the server serves root version %d\n", st.RootVersion)
	return printTUFState(stdout, st)
}

func runTUFServerStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, a := newAdminFlagSet("tuf server-status", stderr)
	if err := parseLeaf(fs, args, stdout); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	st, err := c.TUFState(ctx)
	if err != nil {
		return err
	}
	return printTUFState(stdout, st)
}

func printTUFState(w io.Writer, st tufhost.State) error {
	_, err := fmt.Fprintf(w, "root       version %d\ntargets    version %d\nsnapshot   version %d, expires %s\ntimestamp  version %d, expires %s\n",
		st.RootVersion, st.TargetsVersion, st.SnapshotVersion, st.SnapshotExpires.UTC().Format(time.RFC3339),
		st.TimestampVersion, st.TimestampExpires.UTC().Format(time.RFC3339))
	return err
}
