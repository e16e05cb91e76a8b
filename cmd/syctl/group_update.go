package main

import (
	"context"
	"fmt"
	"io"
)

// runGroupUpdate runs `syctl group update`: only the flags given change.
func runGroupUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, af := newAdminFlagSet("group update", stderr)
	var gf groupFlags
	gf.register(fs)
	if err := parseNone(fs, args, stdout); err != nil {
		return err
	}
	in, err := gf.input()
	if err != nil {
		return err
	}
	ctx, cancel, c, err := af.start(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	g, err := c.UpdateGroup(ctx, gf.app, gf.name, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "group %s: track %s, channel %s, updates %s\n", g.Name, g.Track, g.Channel, onOffString(g.UpdatesEnabled))
	return nil
}
