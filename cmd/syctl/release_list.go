package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// newReleaseListCmd is `syctl release list`.
func newReleaseListCmd() *cobra.Command {
	return newListCmd("list the releases", (*adminclient.Client).ListReleases,
		"VERSION\tBOARD\tFILE\tSIZE\tSHA256\tHOSTED\tTUF\tURL", func(w io.Writer, r store.Release) {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%v\t%v\t%s\n", r.Version, r.Board, r.FileName, r.Size, r.SHA256, r.Hosted, r.HasTargetsMetadata, r.URL)
		})
}
