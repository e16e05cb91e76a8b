package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/internal/smallfile"
	"github.com/switchyard-os/switchyard/omaha-server/tufhost"
	"github.com/switchyard-os/switchyard/signing/tuf"
)

// newTUFPublishRootCmd is `syctl tuf publish-root`: it uploads the next root (made by
// rotate-root and sign-root) to the server, which serves it once it verifies against the
// current root.
func newTUFPublishRootCmd() *cobra.Command {
	c, a := newAdminCmd("publish-root --root FILE", "upload a fully signed root to omaha-server (--server, --token, --root FILE)")
	rootFile := c.Flags().String("root", "", "the signed root metadata to publish (e.g. REPO/root/2.root.json)")
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		if *rootFile == "" {
			return fmt.Errorf("%w: tuf publish-root takes --root FILE and no arguments", errUsage)
		}
		data, err := smallfile.Read(*rootFile, tuf.MaxRootSize)
		if err != nil {
			return err
		}
		ctx, cancel, cl, err := a.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		st, err := cl.PublishTUFRoot(ctx, data)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "the server serves root version %d\n", st.RootVersion)
		return printTUFState(stdout, st)
	})
	return c
}

// newTUFServerStatusCmd is `syctl tuf server-status`.
func newTUFServerStatusCmd() *cobra.Command {
	c, a := newAdminCmd("server-status", "the versions and expiries the server's TUF repository serves now")
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		ctx, cancel, cl, err := a.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		st, err := cl.TUFState(ctx)
		if err != nil {
			return err
		}
		return printTUFState(stdout, st)
	})
	return c
}

func printTUFState(w io.Writer, st tufhost.State) error {
	_, err := fmt.Fprintf(w, "root       version %d\ntargets    version %d\nsnapshot   version %d, expires %s\ntimestamp  version %d, expires %s\n",
		st.RootVersion, st.TargetsVersion, st.SnapshotVersion, st.SnapshotExpires.UTC().Format(time.RFC3339),
		st.TimestampVersion, st.TimestampExpires.UTC().Format(time.RFC3339))
	return err
}
