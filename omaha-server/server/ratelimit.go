package server

import (
	"math"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sourceLimiter is a token bucket per source. The table holds at most max sources: when
// it is full, sources whose bucket has refilled (they are as good as new) are dropped,
// and if that frees too little, arbitrary ones, so an address seen once cannot pin
// memory. A dropped source starts again with a full bucket: the table bounds memory, the
// buckets bound the rate of every source that keeps sending.
type sourceLimiter struct {
	limit rate.Limit
	burst int
	max   int
	now   func() time.Time

	mu      sync.Mutex
	sources map[string]*rate.Limiter
}

func newSourceLimiter(perSecond float64, burst, max int, now func() time.Time) *sourceLimiter {
	return &sourceLimiter{limit: rate.Limit(perSecond), burst: burst, max: max, now: now,
		sources: make(map[string]*rate.Limiter)}
}

// allow takes a token of src's bucket; when there is none it returns false and how long
// until the next one.
func (l *sourceLimiter) allow(src string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.sources[src]
	if !ok {
		if len(l.sources) >= l.max {
			l.sweep(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.sources[src] = lim
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	return false, time.Duration(missing / float64(l.limit) * float64(time.Second))
}

// sweep drops refilled buckets, then arbitrary ones until the table is at most 7/8 full.
func (l *sourceLimiter) sweep(now time.Time) {
	for src, lim := range l.sources {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.sources, src)
		}
	}
	for src := range l.sources {
		if len(l.sources) <= l.max-l.max/8-1 {
			break
		}
		delete(l.sources, src)
	}
}

// sourceOf is the rate-limit source of a peer address: its IP, an IPv6 address by its /64
// (one host usually holds a whole /64).
func sourceOf(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// retryAfter is a Retry-After value: whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
