package fleetlock

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// maxSources bounds the sources sourceLimiter remembers; beyond it the least recently
// seen one is forgotten (its bucket starts full again when it comes back).
const maxSources = 4096

// sourceLimiter is a token bucket per source address: perHour tokens, refilled evenly
// over an hour. A source is an IPv4 address or an IPv6 /64 (what one site usually has).
type sourceLimiter struct {
	perHour int
	now     func() time.Time

	mu      sync.Mutex
	buckets map[netip.Prefix]*list.Element // of *bucket
	lru     *list.List                     // most recently seen first
}

type bucket struct {
	src     netip.Prefix
	tokens  float64
	at      time.Time
	refused bool // refused since the last token it got
}

func newSourceLimiter(perHour int, now func() time.Time) *sourceLimiter {
	return &sourceLimiter{perHour: perHour, now: now, buckets: map[netip.Prefix]*list.Element{}, lru: list.New()}
}

// source returns the source of a request's RemoteAddr ("ip:port"); addresses it cannot
// parse share one source.
func source(remoteAddr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	a := ap.Addr().Unmap()
	bits := 64
	if a.Is4() {
		bits = 32
	}
	p, _ := a.Prefix(bits)
	return p
}

// allow takes a token from src's bucket and reports whether there was one, and, when
// there was none, whether this is the first refusal since src last got one (so that a
// flood is logged once, not once a request).
func (l *sourceLimiter) allow(src netip.Prefix) (ok, firstRefusal bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var b *bucket
	if e, ok := l.buckets[src]; ok {
		l.lru.MoveToFront(e)
		b = e.Value.(*bucket)
		if elapsed := now.Sub(b.at); elapsed > 0 {
			b.tokens = min(float64(l.perHour), b.tokens+float64(l.perHour)*elapsed.Hours())
		}
		b.at = now
	} else {
		if l.lru.Len() >= maxSources {
			oldest := l.lru.Back()
			l.lru.Remove(oldest)
			delete(l.buckets, oldest.Value.(*bucket).src)
		}
		b = &bucket{src: src, tokens: float64(l.perHour), at: now}
		l.buckets[src] = l.lru.PushFront(b)
	}
	if b.tokens < 1 {
		first := !b.refused
		b.refused = true
		return false, first
	}
	b.tokens--
	b.refused = false
	return true, false
}
