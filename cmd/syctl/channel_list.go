package main

import (
	"context"
	"fmt"
	"io"

	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// runChannelList runs `syctl channel list`.
func runChannelList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return listApp(ctx, "channel list", args, stdout, stderr, (*adminclient.Client).ListChannels,
		"CHANNEL\tBOARD\tVERSION", func(w io.Writer, ch store.Channel) {
			if len(ch.Releases) == 0 {
				fmt.Fprintf(w, "%s\t-\t-\n", ch.Name)
			}
			for b, r := range ch.Releases {
				fmt.Fprintf(w, "%s\t%s\t%s\n", ch.Name, b, r.Version)
			}
		})
}
