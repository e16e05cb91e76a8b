package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{
			name: "pseudo-version, modified tree",
			bi: debug.BuildInfo{
				Main: debug.Module{Version: "v0.0.0-20261203171154-abcdef012345"},
				Settings: []debug.BuildSetting{
					{Key: "vcs.revision", Value: "abcdef0123456789"},
					{Key: "vcs.modified", Value: "true"},
				},
			},
			want: "syctl v0.0.0-20261203171154-abcdef012345 (commit abcdef0123456789, modified)",
		},
		{
			name: "clean tree",
			bi: debug.BuildInfo{
				Main:     debug.Module{Version: "v1.2.3"},
				Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123"}, {Key: "vcs.modified", Value: "false"}},
			},
			want: "syctl v1.2.3 (commit 0123)",
		},
		{
			name: "no vcs stamp",
			bi:   debug.BuildInfo{},
			want: "syctl (devel) (commit unknown)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Format("syctl", &tt.bi); got != tt.want {
				t.Errorf("Format = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStringNamesProgram(t *testing.T) {
	if got := String("omaha-server"); !strings.HasPrefix(got, "omaha-server ") {
		t.Errorf("String = %q, want it to start with the program name", got)
	}
}
