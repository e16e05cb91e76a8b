package main

import (
	"context"
	"fmt"
	"io"
)

// runChannelCreate runs `syctl channel create`.
func runChannelCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newAdminFlagSet("channel create", stderr)
	var app, name string
	addAppFlag(fs, &app)
	fs.StringVar(&name, "name", "", "channel name")
	if err := parseNone(fs, args, stdout); err != nil {
		return err
	}
	if err := need(map[string]string{"name": name}); err != nil {
		return err
	}
	ctx, cancel, c, err := af.start(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	ch, err := c.CreateChannel(ctx, app, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created channel %s\n", ch.Name)
	return nil
}
