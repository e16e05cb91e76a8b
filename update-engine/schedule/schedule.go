// Package schedule computes when update-engine checks for updates next.
//
// The numbers follow Flatcar's update_engine (update_check_scheduler.cc), each configurable:
//
//	first check   FirstDelay ± FirstFuzz/2 after start        (7 min, fuzz 10 min: 2–12 min)
//	then          Interval ± Fuzz/2                           (45 min, fuzz 10 min: 40–50 min)
//	after n consecutive server errors
//	              min(Interval·2^n, MaxBackoff) ± a quarter    (never above MaxBackoff = 4 h)
//	server PollInterval
//	              clamped to [MinPoll, MaxPoll], ± a quarter
//
// Fuzz(v, r) is uniform in [v−r/2, v+r−r/2], as in Flatcar. The package is pure: the random
// source is passed in, and the daemon arms one timer per delay (no polling loop).
package schedule

import (
	"math/rand/v2"
	"time"
)

// Policy holds the scheduling parameters.
type Policy struct {
	FirstDelay time.Duration
	FirstFuzz  time.Duration
	Interval   time.Duration
	Fuzz       time.Duration
	MaxBackoff time.Duration
	MinPoll    time.Duration
	MaxPoll    time.Duration
}

// Fuzz returns a duration uniform in [v−r/2, v+r−r/2], never negative.
func Fuzz(rnd *rand.Rand, v, r time.Duration) time.Duration {
	if r <= 0 {
		return max(v, 0)
	}
	d := v - r/2 + time.Duration(rnd.Int64N(int64(r)+1))
	return max(d, 0)
}

// First is the delay of the first check after start.
func (p Policy) First(rnd *rand.Rand) time.Duration {
	return Fuzz(rnd, p.FirstDelay, p.FirstFuzz)
}

// Next is the delay until the next check, given the number of consecutive failed checks and
// the PollInterval the server sent with its last answer (0 if none).
func (p Policy) Next(rnd *rand.Rand, failures int, poll time.Duration) time.Duration {
	switch {
	case failures > 0:
		d := p.Interval
		for i := 0; i < failures && d < p.MaxBackoff; i++ {
			d *= 2
		}
		d = min(d, p.MaxBackoff)
		d = Fuzz(rnd, d, d/2)
		return min(max(d, p.Interval), p.MaxBackoff)
	case poll > 0:
		d := min(max(poll, p.MinPoll), p.MaxPoll)
		return min(max(Fuzz(rnd, d, d/2), p.MinPoll), p.MaxPoll)
	default:
		return Fuzz(rnd, p.Interval, p.Fuzz)
	}
}
