package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
)

// newReleasePublishCmd is `syctl release publish`: an upload with --file, or the metadata
// of a release hosted elsewhere with --url.
func newReleasePublishCmd() *cobra.Command {
	c, af := newAdminCmd("publish --app A --version V --board B (--file PATH [--targets FILE] | --url URL --size N --sha256 HEX [--sha1 HEX])",
		"publish a release: upload its payload, or record one hosted elsewhere")
	var app, file, targets string
	var m adminapi.ReleaseMetadata
	fs := c.Flags()
	addAppFlag(fs, &app)
	fs.StringVar(&m.Version, "version", "", "release version, e.g. 4081.2.0")
	fs.StringVar(&m.Board, "board", "amd64-usr", "board (architecture): amd64-usr, arm64-usr")
	fs.StringVar(&file, "file", "", "payload file to upload (the server hosts it)")
	fs.StringVar(&targets, "targets", "", "signed TUF targets metadata to publish with the payload")
	fs.StringVar(&m.URL, "url", "", "payload URL, for a release hosted elsewhere")
	fs.Int64Var(&m.Size, "size", 0, "payload size in bytes (with --url)")
	fs.StringVar(&m.SHA256, "sha256", "", "payload SHA-256, hex (required with --url; checked by the server with --file)")
	fs.StringVar(&m.SHA1, "sha1", "", "payload SHA-1, hex (optional, with --url)")
	var deltaArgs []string
	fs.StringArrayVar(&deltaArgs, "delta", nil, deltaUsage)
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
		deltas, err := parseDeltas(deltaArgs, m.Version, m.Board)
		if err != nil {
			return err
		}
		ctx, cancel, cl, err := af.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		if file != "" || m.URL != "" || len(deltas) == 0 { // only --delta: deltas of a published release
			if err := publish(ctx, cl, stdout, stderr, app, m, file, targets); err != nil {
				return err
			}
		}
		return publishDeltas(ctx, cl, stdout, stderr, app, m, deltas, targets)
	})
	return c
}
