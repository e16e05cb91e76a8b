package dashboard

import (
	"testing"
	"time"
)

func TestErrorName(t *testing.T) {
	for _, tc := range []struct {
		code int64
		want string
	}{
		{code: 0, want: ""},
		{code: 9, want: "download transfer error"},
		{code: 44, want: "rollback error"},
		{code: 2404, want: "omaha request http response (404)"},
		{code: 42, want: "new pcr policy verification error"},
		{code: 9 | 1<<30, want: "download transfer error, resumed flag"},
		{code: 777, want: "error code (777)"},
	} {
		if got := ErrorName(tc.code); got != tc.want {
			t.Errorf("ErrorName(%d) = %q, want %q", tc.code, got, tc.want)
		}
	}
}

func TestLivePoint(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	counts := []StatusCount{
		{Group: "stable", Status: "complete", Version: "4081.2.0", Count: 5},
		{Group: "stable", Status: "error", Version: "4081.1.0", Count: 1},
		{Group: "beta", Status: "complete", Version: "4081.2.0", Count: 2},
		{Group: "stable", Status: "update-granted", Version: "4081.1.0", Count: 6},
	}
	for _, tc := range []struct {
		group string
		want  []VersionSample
	}{
		{group: "", want: []VersionSample{{At: now, Version: "4081.1.0", Count: 7, Live: true}, {At: now, Version: "4081.2.0", Count: 7, Live: true}}},
		{group: "beta", want: []VersionSample{{At: now, Version: "4081.2.0", Count: 2, Live: true}}},
		{group: "none", want: []VersionSample{}},
	} {
		got := livePoint(counts, tc.group, now)
		if len(got) != len(tc.want) {
			t.Fatalf("group %q: %+v, want %+v", tc.group, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("group %q: %+v, want %+v", tc.group, got, tc.want)
			}
		}
	}
}
