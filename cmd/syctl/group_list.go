package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// newGroupListCmd is `syctl group list`.
func newGroupListCmd() *cobra.Command {
	return newListCmd("list the groups", (*adminclient.Client).ListGroups,
		"GROUP\tTRACK\tCHANNEL\tUPDATES", func(w io.Writer, g store.Group) {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", g.Name, g.Track, g.Channel, onOffString(g.UpdatesEnabled))
		})
}
