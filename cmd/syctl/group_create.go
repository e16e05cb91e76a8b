package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/switchyard-os/switchyard/cmd/internal/usage"
	"github.com/switchyard-os/switchyard/omaha-server/adminapi"
)

// groupFlags are the flags of group create and group update.
type groupFlags struct {
	app, name, track, channel, updates string
}

func (g *groupFlags) register(fs *pflag.FlagSet) {
	addAppFlag(fs, &g.app)
	fs.StringVar(&g.name, "name", "", "group name")
	fs.StringVar(&g.track, "track", "", "track hosts send (their GROUP)")
	fs.StringVar(&g.channel, "channel", "", "channel the group follows")
	fs.StringVar(&g.updates, "updates", "", "on or off")
}

// input checks the flags and returns the group's changes.
func (g *groupFlags) input() (adminapi.GroupInput, error) {
	if err := need(map[string]string{"name": g.name}); err != nil {
		return adminapi.GroupInput{}, err
	}
	upd, err := onOff(g.updates)
	if err != nil {
		return adminapi.GroupInput{}, err
	}
	in := adminapi.GroupInput{UpdatesEnabled: upd}
	if g.track != "" {
		in.Track = &g.track
	}
	if g.channel != "" {
		in.Channel = &g.channel
	}
	return in, nil
}

// newGroupCreateCmd is `syctl group create`.
func newGroupCreateCmd() *cobra.Command {
	c, af := newAdminCmd("create [--app A] --name N --track T --channel C [--updates on|off]", "create a group")
	var gf groupFlags
	gf.register(c.Flags())
	c.RunE = usage.Run(func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		in, err := gf.input()
		if err != nil {
			return err
		}
		if err := need(map[string]string{"track": gf.track, "channel": gf.channel}); err != nil {
			return err
		}
		in.Name = gf.name
		ctx, cancel, cl, err := af.start(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		g, err := cl.CreateGroup(ctx, gf.app, in)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "group %s: track %s, channel %s, updates %s\n", g.Name, g.Track, g.Channel, onOffString(g.UpdatesEnabled))
		return nil
	})
	return c
}
