package main

import (
	"context"
	"io"

	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
)

// runReleasePublish runs `syctl release publish`: an upload with --file, or the metadata of
// a release hosted elsewhere with --url.
func runReleasePublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newAdminFlagSet("release publish", stderr)
	var app, file, targets string
	var m adminapi.ReleaseMetadata
	addAppFlag(fs, &app)
	fs.StringVar(&m.Version, "version", "", "release version, e.g. 4081.2.0")
	fs.StringVar(&m.Board, "board", "amd64-usr", "board (architecture): amd64-usr, arm64-usr")
	fs.StringVar(&file, "file", "", "payload file to upload (the server hosts it)")
	fs.StringVar(&targets, "targets", "", "signed TUF targets metadata to publish with the payload")
	fs.StringVar(&m.URL, "url", "", "payload URL, for a release hosted elsewhere")
	fs.Int64Var(&m.Size, "size", 0, "payload size in bytes (with --url)")
	fs.StringVar(&m.SHA256, "sha256", "", "payload SHA-256, hex (required with --url; checked by the server with --file)")
	fs.StringVar(&m.SHA1, "sha1", "", "payload SHA-1, hex (optional, with --url)")
	var deltaArgs stringList
	fs.Var(&deltaArgs, "delta", deltaUsage)
	if err := parseNone(fs, args, stdout); err != nil {
		return err
	}
	deltas, err := parseDeltas(deltaArgs, m.Version, m.Board)
	if err != nil {
		return err
	}
	ctx, cancel, c, err := af.start(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if file != "" || m.URL != "" || len(deltas) == 0 { // only --delta: deltas of a published release
		if err := publish(ctx, c, stdout, stderr, app, m, file, targets); err != nil {
			return err
		}
	}
	return publishDeltas(ctx, c, stdout, stderr, app, m, deltas, targets)
}
