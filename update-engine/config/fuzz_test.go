package config

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every accepted assignment has a valid key,
// and that rendering the accepted assignments back as double-quoted lines parses to the same
// assignments. Seeds: testdata/fuzz/FuzzParse (hand-written Flatcar and Switchyard files).
func FuzzParse(f *testing.F) {
	f.Add([]byte("SERVER=https://public.update.flatcar-linux.net/v1/update/\nGROUP=stable\n"))
	f.Add([]byte("# comment\nexport REBOOT_STRATEGY='etcd-lock'\nLOCKSMITHD_REBOOT_WINDOW_START=\"Thu 23:00\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		as, err := Parse(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		var b strings.Builder
		for _, a := range as {
			if !validKey(a.Key) {
				t.Fatalf("accepted invalid key %q", a.Key)
			}
			if strings.ContainsAny(a.Value, "\n") {
				t.Fatalf("value with newline %q", a.Value)
			}
			v := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a.Value)
			fmt.Fprintf(&b, "%s=\"%s\"\n", a.Key, v)
		}
		again, err := Parse(strings.NewReader(b.String()), "again")
		if err != nil {
			t.Fatalf("re-parsing %q: %v", b.String(), err)
		}
		if len(again) != len(as) {
			t.Fatalf("round trip: %d assignments, want %d", len(again), len(as))
		}
		for i := range as {
			if again[i].Key != as[i].Key || again[i].Value != as[i].Value {
				t.Fatalf("round trip %d: %q=%q, want %q=%q", i, again[i].Key, again[i].Value, as[i].Key, as[i].Value)
			}
		}
	})
}
