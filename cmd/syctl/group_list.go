package main

import (
	"context"
	"fmt"
	"io"

	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// runGroupList runs `syctl group list`.
func runGroupList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return listApp(ctx, "group list", args, stdout, stderr, (*adminclient.Client).ListGroups,
		"GROUP\tTRACK\tCHANNEL\tUPDATES", func(w io.Writer, g store.Group) {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", g.Name, g.Track, g.Channel, onOffString(g.UpdatesEnabled))
		})
}
