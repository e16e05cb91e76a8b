package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadOEM(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "oem-release")
	os.WriteFile(f, []byte("ID=vmware\nVERSION_ID=11.2.5\nNAME=\"VMware\"\n"), 0o644)
	bad := filepath.Join(dir, "bad-release")
	os.WriteFile(bad, []byte("ID=\"unterminated\n"), 0o644)
	if id, v := ReadOEM(filepath.Join(dir, "missing"), bad, f); id != "vmware" || v != "11.2.5" {
		t.Errorf("ReadOEM = %q, %q", id, v)
	}
	if id, v := ReadOEM(filepath.Join(dir, "missing")); id != "" || v != "" {
		t.Errorf("ReadOEM without files = %q, %q", id, v)
	}
}

func TestTUFBaseURL(t *testing.T) {
	tests := []struct {
		name, server, tuf, want string
		wantErr                 bool
	}{
		{name: "derived", server: "https://updates.example:8443/v1/update/?x=1", want: "https://updates.example:8443/tuf/"},
		{name: "set", server: "https://updates.example/v1/update/", tuf: "https://cdn.example/repo/", want: "https://cdn.example/repo/"},
		{name: "relative server", server: "updates.example/v1/update/", wantErr: true},
		{name: "bad server", server: "https://[::1/", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Server, c.TUFURL = tt.server, tt.tuf
			got, err := c.TUFBaseURL()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("TUFBaseURL() = %q, %v; want %q (error: %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
