package health

import "testing"

// FuzzParseUptime checks that the /proc/uptime parser never panics and never returns a
// negative duration.
func FuzzParseUptime(f *testing.F) {
	for _, s := range []string{"350735.47 234388.90\n", "0.00 0.00", "", "NaN 1", "1e400 1", "-1 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseUptime(s)
		if err == nil && d < 0 {
			t.Fatalf("ParseUptime(%q) = %v", s, d)
		}
	})
}
