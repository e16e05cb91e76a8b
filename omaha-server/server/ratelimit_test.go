package server

import (
	"fmt"
	"testing"
	"time"
)

func TestSourceOf(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"192.0.2.7:4242", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:4242", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:443", "2001:db8:1:3::/64"},
		{"not an address", "not an address"},
	}
	for _, tt := range tests {
		if got := sourceOf(tt.addr); got != tt.want {
			t.Errorf("sourceOf(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// TestSourceTableBounded: a stream of new sources never holds more than max buckets, and
// a source that keeps sending stays limited.
func TestSourceTableBounded(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	l := newSourceLimiter(1, 2, 64, func() time.Time { return now })
	for i := range 10000 {
		l.allow(fmt.Sprintf("198.51.%d.%d", i/256, i%256))
		if n := len(l.sources); n > 64 {
			t.Fatalf("after %d sources the table holds %d", i+1, n)
		}
	}
	if ok, _ := l.allow("a"); !ok {
		t.Fatal("first request refused")
	}
	l.allow("a")
	ok, retry := l.allow("a")
	if ok || retry <= 0 || retry > time.Second {
		t.Errorf("third request at once: allowed %v, retry %v", ok, retry)
	}
	now = now.Add(time.Second)
	if ok, _ := l.allow("a"); !ok {
		t.Error("refused after the refill")
	}
}
