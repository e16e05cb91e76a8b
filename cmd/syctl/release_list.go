package main

import (
	"context"
	"fmt"
	"io"

	"github.com/switchyard-os/switchyard/omaha-server/adminclient"
	"github.com/switchyard-os/switchyard/omaha-server/store"
)

// runReleaseList runs `syctl release list`.
func runReleaseList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return listApp(ctx, "release list", args, stdout, stderr, (*adminclient.Client).ListReleases,
		"VERSION\tBOARD\tFILE\tSIZE\tSHA256\tHOSTED\tTUF\tURL", func(w io.Writer, r store.Release) {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%v\t%v\t%s\n", r.Version, r.Board, r.FileName, r.Size, r.SHA256, r.Hosted, r.HasTargetsMetadata, r.URL)
		})
}
