package main

import (
	"errors"
	"io"
	"testing"

	"github.com/spf13/pflag"

	"github.com/switchyard-os/switchyard/omaha-server/hostauth"
	"github.com/switchyard-os/switchyard/omaha-server/server"
)

func TestHostIdentityFlags(t *testing.T) {
	tests := []struct {
		args      []string
		wantMode  hostauth.Mode
		wantCount bool
		wantErr   bool
	}{
		{args: nil, wantMode: hostauth.TrustOnFirstUse, wantCount: true},
		{args: []string{"--host-identity=enrolled", "--count-unproven-hosts=false"}, wantMode: hostauth.Enrolled},
		{args: []string{"--host-identity=anyone"}, wantErr: true},
	}
	for _, tt := range tests {
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var h hostIdentityFlags
		h.register(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		var c server.Config
		err := h.apply(&c)
		if tt.wantErr {
			if !errors.Is(err, errUsage) {
				t.Errorf("%q: %v, want a usage error", tt.args, err)
			}
			continue
		}
		if err != nil || c.HostIdentity == nil || c.HostIdentity.Mode != tt.wantMode || c.HostIdentity.CountUnproven != tt.wantCount {
			t.Errorf("%q: %+v, %v", tt.args, c.HostIdentity, err)
		}
	}
}
