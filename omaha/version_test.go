package omaha

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in    string
		ok    bool
		str   string
		pre   string
		build string
		nums  []uint64
	}{
		{in: "4081.2.0", ok: true, nums: []uint64{4081, 2, 0}},
		{in: "0.0.0.0", ok: true, nums: []uint64{0, 0, 0, 0}},
		{in: "3602.2.3", ok: true, nums: []uint64{3602, 2, 3}},
		{in: "1.2", ok: true, nums: []uint64{1, 2}},
		{in: "4081.2.0+nightly-20240101", ok: true, build: "nightly-20240101", nums: []uint64{4081, 2, 0}},
		{in: "4081.0.0-beta.1", ok: true, pre: "beta.1", nums: []uint64{4081, 0, 0}},
		{in: "4081.0.0-rc.2+build.7", ok: true, pre: "rc.2", build: "build.7", nums: []uint64{4081, 0, 0}},
		{in: ""},
		{in: "4081"},
		{in: "1.2.3.4.5"},
		{in: "4081.x.0"},
		{in: "4081..0"},
		{in: "4081.2.0."},
		{in: "v4081.2.0"},
		{in: "01.2.3"},
		{in: "1.2.3-"},
		{in: "1.2.3+"},
		{in: "1.2.3-01"},
		{in: "1.2.3-a..b"},
		{in: "1.2.3+a_b"},
		{in: "1.2.3 "},
		{in: "-1.2.3"},
		{in: "99999999999999999999.0.0"},
		{in: strings.Repeat("1", 200) + ".0"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := ParseVersion(tt.in)
			if !tt.ok {
				var ve *VersionError
				if err == nil || !errors.Is(err, ErrVersion) || !errors.As(err, &ve) {
					t.Fatalf("ParseVersion(%q) = %v, %v; want a VersionError", tt.in, v, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.String() != tt.in || v.PreRelease() != tt.pre || v.Build() != tt.build || !slices.Equal(v.Components(), tt.nums) {
				t.Errorf("got %q pre %q build %q nums %v", v, v.PreRelease(), v.Build(), v.Components())
			}
		})
	}
}

func TestVersionOrder(t *testing.T) {
	// Each line sorts strictly before the next.
	ordered := []string{
		"0.0.0.0",
		"1.0.0-alpha",
		"1.0.0-alpha.1",
		"1.0.0-alpha.beta",
		"1.0.0-beta",
		"1.0.0-beta.2",
		"1.0.0-beta.11",
		"1.0.0-rc.1",
		"1.0.0",
		"1.0.1",
		"3602.2.3",
		"3975.2.1",
		"4081.0.0-beta.1",
		"4081.2.0",
		"4081.2.0.1",
		"4081.10.0",
		"18446744073709551615.0.0",
	}
	var vs []Version
	for _, s := range ordered {
		v, err := ParseVersion(s)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	for i := range vs {
		for j := range vs {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := vs[i].Compare(vs[j]); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", vs[i], vs[j], got, want)
			}
		}
	}
	shuffled := slices.Clone(vs)
	slices.Reverse(shuffled)
	slices.SortFunc(shuffled, Version.Compare)
	for i := range vs {
		if shuffled[i].String() != vs[i].String() {
			t.Errorf("sorted[%d] = %s, want %s", i, shuffled[i], vs[i])
		}
	}
}

func TestVersionEqualities(t *testing.T) {
	tests := []struct{ a, b string }{
		{"1.2", "1.2.0"},
		{"1.2.0", "1.2.0.0"},
		{"4081.2.0+nightly-20240101", "4081.2.0+nightly-20240202"},
		{"4081.2.0+nightly-20240101", "4081.2.0"},
	}
	for _, tt := range tests {
		a, _ := ParseVersion(tt.a)
		b, _ := ParseVersion(tt.b)
		if a.Compare(b) != 0 || b.Compare(a) != 0 || a.Less(b) {
			t.Errorf("%s and %s should order equal", tt.a, tt.b)
		}
	}
	var zero Version
	if zero.String() != "0.0.0" {
		t.Errorf("zero Version = %q", zero)
	}
	v, _ := ParseVersion("0.0.1")
	if !zero.Less(v) {
		t.Errorf("zero Version should sort before 0.0.1")
	}
}
