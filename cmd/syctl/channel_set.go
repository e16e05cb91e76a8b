package main

import (
	"context"
	"fmt"
	"io"
)

// runChannelSet runs `syctl channel set`: the release a channel offers on a board.
func runChannelSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newAdminFlagSet("channel set", stderr)
	var app, name, version, board string
	addAppFlag(fs, &app)
	fs.StringVar(&name, "name", "", "channel name")
	fs.StringVar(&version, "version", "", "release version")
	fs.StringVar(&board, "board", "amd64-usr", "board")
	if err := parseNone(fs, args, stdout); err != nil {
		return err
	}
	if err := need(map[string]string{"name": name, "version": version, "board": board}); err != nil {
		return err
	}
	ctx, cancel, c, err := af.start(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	ch, err := c.SetChannel(ctx, app, name, board, version)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "channel %s now offers %s on %s\n", ch.Name, ch.Releases[board].Version, board)
	return nil
}
