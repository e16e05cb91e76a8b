package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// newChannelListCmd is `syctl channel list`.
func newChannelListCmd() *cobra.Command {
	return newListCmd("list the channels and the release each offers per board", (*adminclient.Client).ListChannels,
		"CHANNEL\tBOARD\tVERSION", func(w io.Writer, ch store.Channel) {
			if len(ch.Releases) == 0 {
				fmt.Fprintf(w, "%s\t-\t-\n", ch.Name)
			}
			for b, r := range ch.Releases {
				fmt.Fprintf(w, "%s\t%s\t%s\n", ch.Name, b, r.Version)
			}
		})
}
