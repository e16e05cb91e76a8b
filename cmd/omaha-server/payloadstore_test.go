package main

import (
	"testing"

	"github.com/switchyard-os/switchyard/cmd/internal/usage/usagetest"
)

// TestPayloadStoreFlags: a bad --payload-store and a redirect without a store are usage
// errors, before anything is served.
func TestPayloadStoreFlags(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"redirect without a store", []string{"--data-dir", t.TempDir(), "--payload-redirect", "1m"},
			"omaha-server: --payload-redirect needs --payload-store\nrun 'omaha-server serve --help' for usage\n"},
		{"not an s3 URL", []string{"--data-dir", t.TempDir(), "--payload-store", "https://bucket/x"},
			"omaha-server: --payload-store: s3store: \"https://bucket/x\": want s3://BUCKET/PREFIX?endpoint=URL&region=R\nrun 'omaha-server serve --help' for usage\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			usagetest.UsageError(t, "omaha-server", run, tt.args, tt.want)
		})
	}
}
